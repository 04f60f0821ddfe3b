module github.com/sanigate/sanigate

go 1.26.8

require (
	github.com/paulmach/orb v0.14.0
	github.com/tidwall/rtree v1.10.0
	golang.org/x/crypto v0.59.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/tidwall/geoindex v1.7.0 // indirect
	go.mongodb.org/mongo-driver/v2 v2.5.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
