require "fileinto";
if header :contains "subject" "Grüße" { fileinto "decoded"; }
if header :is "x-folded" "first part second part" { fileinto "unfolded"; }
if address :localpart "from" "joerg" { fileinto "joerg"; }
