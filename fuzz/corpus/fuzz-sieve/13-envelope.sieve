require ["envelope", "fileinto"];
if envelope :domain "to" "example.com" { fileinto "to-com"; }
if envelope :localpart :is "from" "alice" { fileinto "from-alice"; }
if envelope :all :matches "to" "*+*@*" { fileinto "plus"; }
