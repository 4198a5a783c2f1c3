require ["fileinto", "include"];
if header :contains "subject" "offer" { fileinto "Spam"; stop; }
