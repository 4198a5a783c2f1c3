require ["subaddress", "envelope", "fileinto"];
if envelope :detail "to" "lists" { fileinto "detail-lists"; }
if envelope :user "to" "bob" { fileinto "user-bob"; }
if address :detail "to" "*" { fileinto "has-detail"; }
if address :user :is "to" "carol" { fileinto "carol"; }
if address :detail :is "from" "" { fileinto "empty-detail"; }
