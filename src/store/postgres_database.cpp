#include "store/postgres_database.h"

#include <libpq-fe.h>

#include <unordered_map>

#include "common/encoding.h"

namespace deputy::store {
namespace {

// Set on every session, again after a reconnect: Deputy never leaves a transaction waiting on
// anything but the database, so one idle inside a transaction for 5 s is a process paused or
// cut off mid-transaction, and the server ends it so that the rows it locked do not hold up
// the processes taking its work over.
constexpr const char* kSessionSettings = "SET idle_in_transaction_session_timeout = '5s'";


constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kFloat8Oid = 701;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

class PostgresConnection final : public Connection {
 public:
  explicit PostgresConnection(PGconn* conn) : conn_(conn) {}
  ~PostgresConnection() override { PQfinish(conn_); }

  Result<Rows> query(std::string_view sql, const Params& params) override {
    auto result = run(sql, params);
    if (!result) return result.status();
    PGresult* r = result->get();
    Rows rows;
    int n = PQntuples(r);
    int columns = PQnfields(r);
    rows.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      std::vector<Value> values;
      values.reserve(static_cast<size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        if (PQgetisnull(r, i, c)) {
          values.emplace_back(std::monostate{});
          continue;
        }
        std::string_view text(PQgetvalue(r, i, c), static_cast<size_t>(PQgetlength(r, i, c)));
        switch (PQftype(r, c)) {
          case kInt8Oid:
          case kInt4Oid:
          case kInt2Oid: values.emplace_back(static_cast<int64_t>(std::stoll(std::string(text)))); break;
          case kFloat8Oid: values.emplace_back(std::stod(std::string(text))); break;
          case kByteaOid: {
            // Text-format bytea is "\x" followed by hex.
            auto bytes = text.size() >= 2 ? from_hex(text.substr(2)) : std::optional<std::string>{};
            values.emplace_back(Blob{bytes.value_or("")});
            break;
          }
          default: values.emplace_back(std::string(text)); break;
        }
      }
      rows.emplace_back(std::move(values));
    }
    return rows;
  }

  Result<int64_t> execute(std::string_view sql, const Params& params) override {
    auto result = run(sql, params);
    if (!result) return result.status();
    const char* affected = PQcmdTuples(result->get());
    return static_cast<int64_t>(affected && *affected ? std::stoll(affected) : 0);
  }

  Status begin_write(Durability) override { return plain("BEGIN"); }
  Status commit() override { return plain("COMMIT"); }
  Status rollback() override { return plain("ROLLBACK"); }
  Dialect dialect() const override { return Dialect::kPostgres; }

 private:
  Status plain(const char* sql) {
    auto result = run(sql, {});
    return result ? Status::Ok() : result.status();
  }

  Result<PgResult> run(std::string_view sql, const Params& params) {
    std::string key(sql);
    auto it = rewritten_.find(key);
    if (it == rewritten_.end()) it = rewritten_.emplace(key, to_postgres_placeholders(sql)).first;
    const std::string& statement = it->second;

    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0);
    std::vector<int> formats(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      if (std::holds_alternative<std::monostate>(v)) continue;
      if (auto p = std::get_if<int64_t>(&v)) storage[i] = std::to_string(*p);
      else if (auto p = std::get_if<double>(&v)) storage[i] = std::to_string(*p);
      else if (auto p = std::get_if<std::string>(&v)) storage[i] = *p;
      else if (auto p = std::get_if<Blob>(&v)) {
        storage[i] = p->bytes;
        formats[i] = 1;  // binary, so bytes need no escaping
      }
      values[i] = storage[i].data();
      lengths[i] = static_cast<int>(storage[i].size());
    }
    PgResult result(PQexecParams(conn_, statement.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                                 lengths.data(), formats.data(), 0));
    if (!result) return Unavailable("postgresql: no result (connection lost?)");
    ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
    const char* sqlstate = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    std::string message = std::string("postgresql: ") + PQresultErrorMessage(result.get());
    if (PQstatus(conn_) == CONNECTION_BAD) {
      PQreset(conn_);
      if (PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, kSessionSettings));
    }
    if (sqlstate && std::string_view(sqlstate) == "23505") return Status{ErrorCode::kAlreadyExists, message};
    return Unavailable(message);
  }

  PGconn* conn_;
  std::unordered_map<std::string, std::string> rewritten_;
};

class PostgresDatabase final : public PooledDatabase {
 public:
  Status init(const std::string& url, size_t pool_size) {
    url_ = url;
    return fill(pool_size);
  }
  Dialect dialect() const override { return Dialect::kPostgres; }

 protected:
  Result<std::unique_ptr<Connection>> connect() override {
    PGconn* conn = PQconnectdb(url_.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      // libpq's message names host and reason, never the password.
      std::string message = PQerrorMessage(conn);
      PQfinish(conn);
      return Unavailable("cannot connect to PostgreSQL: " + message);
    }
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    auto connection = std::make_unique<PostgresConnection>(conn);
    if (auto set = connection->execute(kSessionSettings, {}); !set) return set.status();
    return std::unique_ptr<Connection>(std::move(connection));
  }

 private:
  std::string url_;
};

}  // namespace

std::string to_postgres_placeholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::unique_ptr<Database>> open_postgres(const std::string& url, size_t pool_size) {
  auto database = std::make_unique<PostgresDatabase>();
  if (Status s = database->init(url, pool_size); !s.ok()) return s;
  return std::unique_ptr<Database>(std::move(database));
}

}  // namespace deputy::store
