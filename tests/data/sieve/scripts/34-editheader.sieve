require ["editheader", "fileinto", "variables", "relational", "comparator-i;ascii-numeric"];
# Later tests see the edited header (RFC 5293 7).
addheader "X-Tern-A" "one";
addheader :last "X-Tern-A" "two";
addheader "X-Tern-A" "three";
if header :count "eq" :comparator "i;ascii-numeric" "x-tern-a" "3" { fileinto "three"; }
deleteheader :index 1 "X-Tern-A";
deleteheader :index 1 :last :is "X-Tern-A" "one";
if header :is "x-tern-a" "one" { fileinto "first-deleted"; }
if header :is "x-tern-a" "two" { fileinto "last-kept"; }
deleteheader :contains "x-tern-a" ["tw", "nothing"];
if not exists "x-tern-a" { fileinto "all-gone"; }
# value patterns match the decoded value, as the header test does
if header :matches "subject" "*" { set "s" "${1}"; }
deleteheader :matches "Subject" "*";
if not exists "subject" { fileinto "no-subject"; }
addheader :last "Subject" "Re: ${s}";
if header :contains "subject" "Re: " { fileinto "re"; }
# protected: silently ignored
deleteheader "Received";
deleteheader "Auto-Submitted";
if exists "received" { fileinto "received-kept"; }
# :index past the end and unmatched patterns delete nothing
deleteheader :index 50 "From";
deleteheader :is "From" "nobody";
if exists "from" { fileinto "from-kept"; }
