// An excerpt of github.com/traefik/traefik/v3 v3.7.13's go.mod: the lines the build edits.
module github.com/traefik/traefik/v3

go 1.26.0

require (
	github.com/abbot/go-http-auth v0.0.0-00010101000000-000000000000 // No tag on the repo.
	github.com/go-acme/lego/v5 v5.4.1
	github.com/traefik/traefik/dynamic/ext v0.0.0-00010101000000-000000000000
)

require (
	github.com/go-acme/alidns-20150109/v5 v5.0.3 // indirect
	github.com/huaweicloud/huaweicloud-sdk-go-v3 v0.1.180 // indirect
	github.com/nrdcg/oci-go-sdk/common/v1065 v1065.108.0 // indirect
	golang.org/x/net v0.50.0 // indirect
)

replace github.com/traefik/traefik/dynamic/ext => ./pkg/config/dynamic/ext

replace (
	github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20260804094822-b975dcaa8c48
	github.com/go-check/check => github.com/containous/check v0.0.0-20170915194414-ca0bf163426a
)
