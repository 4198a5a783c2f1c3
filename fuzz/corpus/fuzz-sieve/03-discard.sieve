if header :contains "subject" "invoice" { discard; stop; }
keep;
