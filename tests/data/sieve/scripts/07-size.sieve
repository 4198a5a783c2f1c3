require ["fileinto"];
if size :over 10K { fileinto "big"; }
if size :under 1k { fileinto "small"; }
if allof (size :over 100, size :under 1M) { fileinto "medium"; }
