# Riverside General's container security policy for Dockerfiles (course version).
#
# Evaluated offline by careops.dockerfile.policy with regopy (rego-cpp). The input is the parsed
# Dockerfile: input.instructions[_] = {cmd, args, line, words, pairs, exec_form, flags, stage}.
# Every finding in `deny` is {id, line, message, hint}; an empty set means the Dockerfile complies.
package careops.dockerfile

import rego.v1

final_stage := max({i.stage | some i in input.instructions})

final := [i | some i in input.instructions; i.stage == final_stage]

users := [i | some i in final; i.cmd == "USER"]

root_names := {"root", "0", ""}

# POL-1: the running process must not be root.
deny contains f if {
	count(users) == 0
	f := {"id": "POL-1", "line": 1, "message": "no USER: the container would run as root",
		"hint": "add a non-root USER after the last step that needs root"}
}

deny contains f if {
	last := users[count(users) - 1]
	name := split(last.words[0], ":")[0]
	name in root_names
	f := {"id": "POL-1", "line": last.line, "message": sprintf("USER %s runs the service as root", [last.args]),
		"hint": "switch to a dedicated non-root user"}
}

# POL-2: only the hospital's own, pinned base images (there is no outside registry).
deny contains f if {
	some i in input.instructions
	i.cmd == "FROM"
	image := i.words[0]
	not startswith(image, "careops/")
	not image in stage_names
	f := {"id": "POL-2", "line": i.line, "message": sprintf("base image %s is not from the hospital's registry", [image]),
		"hint": "build FROM careops/base:bookworm"}
}

deny contains f if {
	some i in input.instructions
	i.cmd == "FROM"
	image := i.words[0]
	not image in stage_names
	not contains(image, "@sha256:")
	unpinned(image)
	f := {"id": "POL-2", "line": i.line, "message": sprintf("base image %s is not pinned", [image]),
		"hint": "name an exact tag (careops/base:bookworm) or a digest, never latest"}
}

stage_names := {lower(i.words[2]) | some i in input.instructions; i.cmd == "FROM"; count(i.words) == 3}

unpinned(image) if endswith(image, ":latest")

unpinned(image) if {
	parts := split(image, "/")
	not contains(parts[count(parts) - 1], ":")
}

# POL-3: nothing downloaded at build time through ADD.
deny contains f if {
	some i in input.instructions
	i.cmd == "ADD"
	some w in i.words
	regex.match(`^(https?|ftp)://`, w)
	f := {"id": "POL-3", "line": i.line, "message": "ADD downloads a URL into the image (unverified, not reproducible)",
		"hint": "put the file in the build context (checked and reviewed) and COPY it"}
}

# POL-4: no secrets in the image's metadata.
deny contains f if {
	some i in input.instructions
	i.cmd in {"ENV", "ARG"}
	some key, value in i.pairs
	regex.match(`(PASS(WORD|WD)?|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)($|_)`, upper(key))
	value != ""
	f := {"id": "POL-4", "line": i.line, "message": sprintf("%s %s puts a secret into the image", [i.cmd, key]),
		"hint": "pass secrets at run time, never in ENV or ARG (docker history shows both)"}
}

# POL-5: no piping a download into a shell.
deny contains f if {
	some i in input.instructions
	i.cmd == "RUN"
	regex.match(`(curl|wget)[^|]*\|\s*(ba|da)?sh`, i.args)
	f := {"id": "POL-5", "line": i.line, "message": "RUN pipes a download into a shell",
		"hint": "the build has no network; bring reviewed files in through the context"}
}

# POL-6: no world-writable files or folders.
deny contains f if {
	some i in input.instructions
	i.cmd == "RUN"
	regex.match(`chmod\s+(-R\s+)?(0?777|a\+w|o\+w)`, i.args)
	f := {"id": "POL-6", "line": i.line, "message": "RUN makes files world-writable",
		"hint": "chown the data folder to the service user instead (chown adt:adt /data)"}
}

# POL-7: no sudo in images.
deny contains f if {
	some i in input.instructions
	i.cmd == "RUN"
	regex.match(`(^|[\s;&|])sudo(\s|$)`, i.args)
	f := {"id": "POL-7", "line": i.line, "message": "RUN uses sudo",
		"hint": "steps before USER already run as root; sudo in an image is an escalation path"}
}

# POL-8: a non-root service cannot bind privileged ports.
deny contains f if {
	some i in final
	i.cmd == "EXPOSE"
	some w in i.words
	port := to_number(split(w, "/")[0])
	port < 1024
	f := {"id": "POL-8", "line": i.line, "message": sprintf("EXPOSE %v is a privileged port", [port]),
		"hint": "use ports above 1023 (2575 for MLLP, 8081 for HTTP)"}
}

# POL-9: the orchestrator must be able to tell a hung service from a healthy one.
deny contains f if {
	not has_healthcheck
	f := {"id": "POL-9", "line": 1, "message": "no HEALTHCHECK", "hint": "add HEALTHCHECK CMD ... that asks /health"}
}

has_healthcheck if {
	some i in final
	i.cmd == "HEALTHCHECK"
	upper(i.args) != "NONE"
}
