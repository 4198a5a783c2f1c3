require ["spamtestplus", "virustest", "fileinto", "relational", "comparator-i;ascii-numeric"];
# spamtest, virustest (RFC 5235) with no spam or virus check: not tested.
# Not here: :count of an untested result, 0 in Tern (RFC 5235 3.1), 1 in
# Pigeonhole (tests/unit and test_sieve_spamtest.py cover it)
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "spam-0"; }
if spamtest :percent :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "percent-0"; }
if spamtest :value "ge" :comparator "i;ascii-numeric" "1" { fileinto "tested"; }
if virustest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "virus-0"; }
if virustest "0" { fileinto "virus-is-0"; }
