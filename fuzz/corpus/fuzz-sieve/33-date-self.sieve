#X: Sun, 6 Dec 2026 23:59:59 -0500 (EST)
#Y: from a; 29 Feb 24 10:00 PDT

require ["date", "index", "variables"];
if date :index 1 :originalzone :matches "#x" "iso8601" "*" { set "a" "${0}"; }
if date :zone "+0100" "#y" "std11" "x" { discard; }
