require "fileinto";
if header :matches "subject" "*\\**" { fileinto "star"; }
if header :matches "subject" "*\\?" { fileinto "question"; }
if header :matches "subject" "Invoice ????-?? *" { fileinto "invoice"; }
if header :matches "subject" "*must*go*" { fileinto "go"; }
if header :matches :comparator "i;octet" "subject" "invoice*" { fileinto "case"; }
