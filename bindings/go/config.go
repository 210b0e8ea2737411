// Config mirrors the library's JSON config field for field, so a Go program can build
// one with the compiler's help. It is only ever marshalled with encoding/json and handed
// to ckv_open_config: every zero field is left out and so takes the library's default,
// and all validation happens in the library. A JSON string works just as well (and
// reaches fields this struct may not have yet).

package coordkv

// Config is the JSON config of OpenConfig; see the repository README for each option.
type Config struct {
	// URL is "mem://" or "nats://host:port[,host:port...]".
	URL string `json:"url,omitempty"`
	// Servers lists NATS servers as host:port or nats://host:port.
	Servers []string `json:"servers,omitempty"`
	// Bucket is the JetStream KV bucket name (A-Z a-z 0-9 - _).
	Bucket string `json:"bucket,omitempty"`
	// History is how many revisions are kept per key (1..64).
	History uint32 `json:"history,omitempty"`
	// Replicas is the bucket's replication factor on NATS (1..5).
	Replicas uint32 `json:"replicas,omitempty"`
	// Storage is "file" or "memory" (JetStream storage of the bucket).
	Storage string `json:"storage,omitempty"`
	// MaxValueSize is the largest value accepted, in bytes.
	MaxValueSize uint64 `json:"max_value_size,omitempty"`
	// MaxBytes limits the bucket's size in bytes; -1 (the default) for no limit.
	MaxBytes int64 `json:"max_bytes,omitempty"`
	Auth     *Auth `json:"auth,omitempty"`
	TLS      *TLS  `json:"tls,omitempty"`
	// ConnectTimeoutMs and RequestTimeoutMs are in milliseconds.
	ConnectTimeoutMs uint64 `json:"connect_timeout_ms,omitempty"`
	RequestTimeoutMs uint64 `json:"request_timeout_ms,omitempty"`
	ConnectionName   string `json:"connection_name,omitempty"`
	// MaxWatchers caps the live watchers of one store.
	MaxWatchers uint64 `json:"max_watchers,omitempty"`
	// MarkerTTLMs is how long the delete marker of an expired key lives on NATS, in
	// milliseconds (whole seconds, at least 1000). A watcher away longer than this across
	// an expiry ends with CANCELED(history lost); on a bucket with History above 1 a
	// shorter lease or key TTL is raised to it.
	MarkerTTLMs uint64 `json:"marker_ttl_ms,omitempty"`
}

// Auth holds NATS credentials; set the fields of one method.
type Auth struct {
	User      string `json:"user,omitempty"`
	Password  string `json:"password,omitempty"`
	Token     string `json:"token,omitempty"`
	NkeySeed  string `json:"nkey_seed,omitempty"`
	CredsFile string `json:"creds_file,omitempty"`
}

// TLS holds the files for a TLS connection to NATS.
type TLS struct {
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	Required bool   `json:"required,omitempty"`
}
