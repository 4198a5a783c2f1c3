require ["reject", "fileinto"];
fileinto "first";
reject "conflict";
