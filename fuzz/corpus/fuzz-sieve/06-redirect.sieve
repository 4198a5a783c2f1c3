if anyof (header :contains "from" "alice", size :over 100K) {
  redirect "accounting@example.com";
  redirect "accounting@example.com";
}
