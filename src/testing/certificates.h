// Certificates made on the spot for TLS tests: a CA, and server certificates it signs for
// the names asked for. Test only: short-lived, P-256 keys, no revocation.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace deputy::testing {

class TestCertificates {
 public:
  struct Issued {
    std::string certificate_pem;
    std::string key_pem;
  };

  explicit TestCertificates(const std::string& ca_name = "Deputy Test CA") : ca_key_(new_key()), ca_(new_certificate(ca_name)) {
    add_extension(ca_.get(), ca_.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(ca_.get(), ca_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    sign(ca_.get(), ca_key_.get());
  }

  std::string ca_pem() const { return to_pem(ca_.get()); }

  // subject_alt_names as OpenSSL writes them: "IP:127.0.0.1", "DNS:localhost,DNS:x.example".
  Issued issue(const std::string& subject_alt_names) const {
    Key key = new_key();
    Certificate cert = new_certificate("deputy test server");
    X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_.get()));
    X509_set_pubkey(cert.get(), key.get());
    add_extension(ca_.get(), cert.get(), NID_subject_alt_name, subject_alt_names);
    add_extension(ca_.get(), cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_extension(ca_.get(), cert.get(), NID_ext_key_usage, "serverAuth");
    sign(cert.get(), ca_key_.get());
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    return Issued{to_pem(cert.get()), read_all(bio.get())};
  }

 private:
  using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
  using Certificate = std::unique_ptr<X509, decltype(&X509_free)>;

  static Key new_key() {
    Key key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    if (!key) throw std::runtime_error("EC key generation failed");
    return key;
  }

  Certificate new_certificate(const std::string& common_name) const {
    Certificate cert(X509_new(), X509_free);
    X509_set_version(cert.get(), 2);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    if (ca_key_) {
      X509_set_pubkey(cert.get(), ca_key_.get());
      X509_set_issuer_name(cert.get(), name);
    }
    return cert;
  }

  static void add_extension(X509* issuer, X509* subject, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, subject, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) throw std::runtime_error("bad certificate extension " + value);
    X509_add_ext(subject, ext, -1);
    X509_EXTENSION_free(ext);
  }

  static void sign(X509* cert, EVP_PKEY* key) {
    if (X509_sign(cert, key, EVP_sha256()) == 0) throw std::runtime_error("certificate signing failed");
  }

  static std::string read_all(BIO* bio) {
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<size_t>(size));
  }

  static std::string to_pem(X509* cert) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(bio.get(), cert);
    return read_all(bio.get());
  }

  Key ca_key_;
  Certificate ca_;
};

}  // namespace deputy::testing
