require "fileinto";
if address :domain :is "from" "example.org" { fileinto "org"; }
if address :localpart "to" "carol" { fileinto "carol"; }
if address :all :comparator "i;octet" "cc" "dave@Example.COM" { fileinto "dave-exact"; }
if address :domain "cc" "example.com" { fileinto "dave-casemap"; }
if address :is :all "to" "" { fileinto "no-to"; }
