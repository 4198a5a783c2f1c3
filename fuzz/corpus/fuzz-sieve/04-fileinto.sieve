require "fileinto";
if header :is "List-Id" "<news.example.org>" {
  fileinto "Lists/News";
} elsif header :matches "subject" "[[]SALE]*" {
  fileinto "Shopping";
} else {
  fileinto "INBOX.Other";
}
