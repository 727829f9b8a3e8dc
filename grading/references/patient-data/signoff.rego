package careops.signoff

import rego.v1

deny contains "the author of a change may not sign it" if {
	lower(input.signer.id) == lower(input.change.author)
}

deny contains sprintf("%s is not on the list of approvers", [input.signer.id]) if {
	not lower(input.signer.id) in {lower(a) | some a in input.approvers}
}

deny contains sprintf("the meaning %q is not one of %v", [input.signer.meaning, input.meanings]) if {
	not input.signer.meaning in input.meanings
}

deny contains "a signature needs the signer's printed name" if {
	trim_space(input.signer.name) == ""
}
