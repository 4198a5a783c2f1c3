require "reject";
if header :contains "subject" ["invoice", "sale"] {
  reject text:
Not wanted here.
..dot-stuffed line
.
;
}
