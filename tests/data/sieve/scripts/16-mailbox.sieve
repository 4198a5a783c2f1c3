require ["mailbox", "fileinto"];
fileinto :create "Created/Deep";
