require ["vacation", "fileinto"];
# RFC 5230: the parameters, with and without :handle, and :mime
if header :contains "subject" "invoice" {
  vacation :days 3 :subject "Away" :from "me@example.com"
           :addresses ["bob@example.com", "b@example.net"] :handle "away-1"
           "I am away until Monday.";
  fileinto "Bills";
} elsif size :over 10K {
  vacation :mime text:
Content-Type: text/plain; charset=us-ascii

Back soon.
.
;
} else {
  vacation :days 2 "Gone fishing.
Back soon.";
}
