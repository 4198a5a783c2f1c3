# RFC 5260 6: :index and :last on header and address (Debian's
# Pigeonhole ignores :index on the date test: that is in the unit tests)
require ["index", "date", "relational", "comparator-i;ascii-numeric", "fileinto"];
if header :index 2 :contains "received" "client.example" { fileinto "h-index2"; }
if header :index 1 :last :contains "received" "nowhere" { fileinto "h-last"; }
if header :index 2 :last :matches "received" "*client*" { fileinto "h-last2"; }
if address :index 2 :is "cc" "three@example.com" { fileinto "a-index2"; }
if address :index 1 :is "cc" "two@example.com" { fileinto "a-index1"; }
if address :index 3 :is ["to", "cc"] "three@example.com" { fileinto "a-list3"; }
if address :index 1 :last :domain :is ["cc", "to"] "example.com" { fileinto "a-last-domain"; }
if header :index 9 :contains "received" "" { fileinto "none"; }
if header :index 1 :count "eq" :comparator "i;ascii-numeric" "received" "1" { fileinto "count1"; }
if date :count "eq" :comparator "i;ascii-numeric" "received" "date" "1" { fileinto "dcount1"; }
if date :count "eq" :comparator "i;ascii-numeric" "x-nope" "date" "0" { fileinto "dcount0"; }
