require "fileinto";
if header :is :comparator "i;ascii-casemap" "subject" "INVOICE 2026-11 FOR acme" { fileinto "casemap"; }
if header :is :comparator "i;octet" "subject" "INVOICE 2026-11 FOR acme" { fileinto "octet"; }
if header :contains "x-spam-score" "" { fileinto "empty-key"; }
if header :is "x-absent" "" { fileinto "absent"; }
