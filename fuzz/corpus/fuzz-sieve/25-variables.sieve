# RFC 5229: set with modifiers, references, match variables
require ["variables", "fileinto"];
set "a" "juMBlEd lETteRS";
set :length "len" "${a}";
set :upperfirst :lower "b" "${a}";
set :quotewildcard "q" "Rock*?";
set :upper "U" "${b}";
if header :matches "Subject" "* *" {
    fileinto "first-${1}";
}
if address :matches "From" "*@*" {
    set :lower "dom" "${2}";
    fileinto "from-${dom}-${1}";
}
if header :matches "Subject" "no such subject*" {
    fileinto "never";
}
fileinto "v-${len}-${b}-${U}-${q}-${BAD${len}-${unset}-${0}";
