# RFC 5231 :count and :value, RFC 4790 i;ascii-numeric
require ["relational", "comparator-i;ascii-numeric", "fileinto", "envelope", "variables"];
if header :value "ge" :comparator "i;ascii-numeric" "X-Spam-Score" "5" { fileinto "spam"; }
if header :value "lt" :comparator "i;ascii-numeric" "X-Spam-Score" "10" { fileinto "lt10"; }
if header :value "gt" :comparator "i;ascii-numeric" "Subject" "999999999999999999999" { fileinto "subj-inf"; }
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "3" { fileinto "three"; }
if address :count "eq" :comparator "i;ascii-numeric" ["to"] "2" { fileinto "to2"; }
if header :count "eq" :comparator "i;ascii-numeric" ["to", "cc", "x-nope"] "2" { fileinto "hcount2"; }
if header :count "gt" ["to", "cc"] "10" { fileinto "casemap-count"; }
if envelope :count "eq" :comparator "i;ascii-numeric" "from" "1" { fileinto "env1"; }
if address :value "gt" :all :comparator "i;ascii-casemap" "from" "M" { fileinto "N-Z"; } else { fileinto "A-M"; }
if header :value "ne" :comparator "i;octet" "subject" "x" { fileinto "ne"; }
if string :count "eq" :comparator "i;ascii-numeric" ["a", "", "b"] "2" { fileinto "strcount"; }
if header :is :comparator "i;ascii-numeric" "X-Spam-Score" "007" { fileinto "is7"; }
if header :value "eq" :comparator "i;ascii-numeric" "Subject" "abc" { fileinto "infeq"; }
if address :value "le" :comparator "i;octet" :domain "to" "example.com" { fileinto "le"; }
