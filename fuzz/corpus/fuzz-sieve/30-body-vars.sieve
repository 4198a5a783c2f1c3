# body with variables in keys and content types, relational :count of
# the entities, and an encoded header message
require ["body", "fileinto", "variables", "relational", "comparator-i;ascii-numeric"];
set "t" "text";
set "word" "numbers";
if body :content "${t}" :contains "${word}" { fileinto "var-key"; }
if body :content "" :count "ge" :comparator "i;ascii-numeric" "5" { fileinto "five-entities"; }
if body :content "text" :count "eq" :comparator "i;ascii-numeric" "1" { fileinto "one-text"; }
if body :raw :contains "--outer--" { fileinto "raw-boundary"; }
if body :text :contains "Gruesse" { fileinto "gruesse"; }
if not body :contains "nothing like this" { keep; }
