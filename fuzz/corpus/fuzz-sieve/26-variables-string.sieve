# RFC 5229 5: the string test; :matches on expanded keys
require ["variables", "fileinto", "imap4flags"];
set "state" "pending";
set "state" "${state} done";
if string :matches " ${state} " "* pending *" { fileinto "pending"; }
if string :is "${state}" "pending done" { fileinto "is"; }
set "p" "*[SALE]*";
if header :matches "Subject" "${p}" { fileinto "sale-${2}"; }
set :quotewildcard "lit" "* now?";
if header :matches "Subject" "*${lit}" { fileinto "literal-${1}"; }
if string :contains ["", "x"] "" { setflag "fl" "\\Seen"; addflag "fl" "work"; }
if hasflag :is "fl" "work" { fileinto :flags "${fl}" "flags"; }
if string :is "${nothing}" "" { keep; }
