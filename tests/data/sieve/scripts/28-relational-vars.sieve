# relational with variables and imap4flags: counts of flags, ordering of
# set values, match variables are not set by :count/:value
require ["relational", "comparator-i;ascii-numeric", "variables", "imap4flags", "fileinto"];
set "n" "12";
if string :value "gt" :comparator "i;ascii-numeric" "${n}" "9" { fileinto "num-gt"; }
if string :value "gt" "${n}" "9" { fileinto "text-gt"; }
if header :matches "Subject" "*" { set "subj" "${0}"; }
if header :value "ge" :comparator "i;ascii-numeric" "X-Spam-Score" "0" { fileinto "m-${0}"; }
addflag ["a", "b c"];
if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { fileinto "three-flags"; }
if hasflag :value "lt" "b" { fileinto "flag-lt-b"; }
if header :count "lt" :comparator "i;ascii-numeric" "Received" "1" { keep; }
