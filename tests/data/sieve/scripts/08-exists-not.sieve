require "fileinto";
if exists ["List-Id", "Message-ID"] { fileinto "has-both"; }
if not exists "Precedence" { fileinto "no-precedence"; }
if exists "X-Missing" { fileinto "never"; }
if true { if false { discard; } }
