require ["duplicate", "fileinto", "variables"];
# The list is empty in both tools: every test is false, and each distinct
# (handle, ID) is an entry to record; one without the field records none.
if duplicate { fileinto "Dups"; }
if header :matches "subject" "*" { set "s" "${0}"; }
if duplicate :handle "subj" :uniqueid "${s}" :seconds 60 { discard; }
if duplicate :header "X-None" :handle "none" { discard; }
if duplicate :uniqueid "fixed" {}
if duplicate :uniqueid "fixed" :last { fileinto "Later"; }
