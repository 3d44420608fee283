package pki_test

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/warrenmq/warren/internal/pki"
)

func Example() {
	now := time.Now()
	ca, err := pki.NewCA("example CA", nil, now, 365*24*time.Hour)
	if err != nil {
		panic(err)
	}
	server, err := ca.Issue(pki.Request{
		CommonName: "rabbitmq.example",
		DNSNames:   []string{"rabbitmq.example"},
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Validity:   90 * 24 * time.Hour,
	}, now)
	if err != nil {
		panic(err)
	}
	fmt.Println(server.X509.Subject.CommonName, "issued by", server.X509.Issuer.CommonName)
	// Output: rabbitmq.example issued by example CA
}
