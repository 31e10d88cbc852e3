// Local stand-ins for the push providers, speaking their real protocols on 127.0.0.1, for tests:
// a Web Push endpoint (RFC 8030) that decrypts what it receives (RFC 8291, aes128gcm) with the
// subscription's private key and checks the VAPID token (RFC 8292); an FCM HTTP v1 pair (OAuth2
// token endpoint checking the RS256 assertion, messages:send checking the bearer token); an APNs
// server over HTTP/2 (h2c) checking the ES256 provider token. Each records what it received and
// answers scripted replies (status, headers, body) per registration, then 200/201.
import assert from "node:assert/strict";
import { createECDH, generateKeyPairSync, randomBytes, type ECDH } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createH2Server, type Http2Server, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { createLocalJWKSet, exportJWK, importSPKI, jwtVerify, type JWK } from "jose";
import webpush from "web-push";

const require = createRequire(import.meta.url);
const ece = require("http_ece") as { decrypt(buffer: Buffer, params: { version: string; privateKey: ECDH; authSecret: string }): Buffer };

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Replies to give, in order, per key (then the default). */
export class Script {
  private readonly replies = new Map<string, Reply[]>();
  add(key: string, ...replies: Reply[]): void {
    this.replies.set(key, [...(this.replies.get(key) ?? []), ...replies]);
  }
  next(key: string, fallback: Reply): Reply {
    return this.replies.get(key)?.shift() ?? fallback;
  }
}

const readBody = async (req: IncomingMessage | AsyncIterable<Buffer | string>): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer | string>) chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
};

const listen = async (server: Server | Http2Server): Promise<string> => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

const close = (server: Server | Http2Server): Promise<void> => new Promise((r) => server.close(() => r()));

/** A browser's push subscription: its keys, and a decryptor for what is sent to it. */
export class Subscription {
  readonly ecdh = createECDH("prime256v1");
  readonly auth = randomBytes(16).toString("base64url");
  readonly p256dh: string;
  constructor(readonly endpoint: string) {
    this.ecdh.generateKeys();
    this.p256dh = this.ecdh.getPublicKey().toString("base64url");
  }
  decrypt(body: Buffer): string {
    return ece.decrypt(body, { version: "aes128gcm", privateKey: this.ecdh, authSecret: this.auth }).toString("utf8");
  }
}

export interface WebPushReceived {
  subscription: string;
  headers: Record<string, string | string[] | undefined>;
  /** The decrypted payload, parsed. */
  payload: { title: string; body: string; badge: number; tag: string; data: { conversationId: string; messageId: string; seq: number } };
  /** The VAPID JWT's claims (verified against the public key). */
  vapid: { aud: string; sub: string; exp: number };
}

/** A VAPID key pair (web-push's format) and a Web Push endpoint on 127.0.0.1. */
export class WebPushEndpoint {
  readonly vapid = webpush.generateVAPIDKeys();
  readonly subject = "mailto:ops@chat.example";
  readonly received: WebPushReceived[] = [];
  /** Every request's subscription, whatever the reply. */
  readonly requests: string[] = [];
  readonly script = new Script();
  readonly problems: string[] = [];
  /**
   * Requests that arrived while answers were held (see hold): the sender never heard back, so they
   * do not count as received.
   */
  readonly unanswered: WebPushReceived[] = [];
  private gate: { held: Promise<void>; which: (r: WebPushReceived) => boolean; release: () => void } | undefined;
  private readonly subscriptions = new Map<string, Subscription>();
  private server: Server | undefined;
  url = "";

  /**
   * Holds the answers to the requests `which` picks (all by default) until release is called.
   * Called again while holding, it changes which requests are held; one release ends both.
   */
  hold(which: (r: WebPushReceived) => boolean = () => true): () => void {
    if (this.gate !== undefined) {
      this.gate.which = which;
      return this.gate.release;
    }
    let open = () => {};
    const held = new Promise<void>((r) => (open = r));
    const release = () => {
      this.gate = undefined;
      open();
    };
    this.gate = { held, which, release };
    return release;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      void (async () => {
        const body = await readBody(req);
        const id = (req.url ?? "").split("/").pop() ?? "";
        const sub = this.subscriptions.get(id);
        this.requests.push(id);
        try {
          assert.ok(sub, `no subscription ${id}`);
          assert.equal(req.headers["content-encoding"], "aes128gcm");
          assert.ok(Number(req.headers["ttl"]) >= 0, "TTL header");
          const auth = /^vapid t=([^,]+), k=([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? "");
          assert.ok(auth, `VAPID Authorization header: ${req.headers.authorization ?? ""}`);
          assert.equal(auth[2], this.vapid.publicKey, "k= is the VAPID public key");
          const { payload: vapid } = await jwtVerify(auth[1] ?? "", await vapidKey(this.vapid.publicKey), { audience: this.url, algorithms: ["ES256"] });
          const payload = JSON.parse(sub.decrypt(body)) as WebPushReceived["payload"];
          const gate = this.gate;
          const request = { subscription: id, headers: req.headers, payload, vapid: vapid as WebPushReceived["vapid"] };
          if (gate?.which(request) === true) {
            this.unanswered.push(request);
            await gate.held;
            res.destroy();
            return;
          }
          const reply = this.script.next(id, { status: 201 });
          if (reply.status < 300) this.received.push(request);
          res.writeHead(reply.status, reply.headers).end(reply.body ?? "");
        } catch (err) {
          this.problems.push((err as Error).message);
          res.writeHead(400).end((err as Error).message);
        }
      })();
    });
    this.server = server;
    this.url = await listen(server);
    return this;
  }
  subscribe(name: string): Subscription {
    const s = new Subscription(`${this.url}/push/${name}`);
    this.subscriptions.set(name, s);
    return s;
  }
  env(): Record<string, string> {
    return { WEB_PUSH_VAPID_SUBJECT: this.subject, WEB_PUSH_VAPID_PUBLIC_KEY: this.vapid.publicKey, WEB_PUSH_VAPID_PRIVATE_KEY: this.vapid.privateKey };
  }
  stop(): Promise<void> {
    return this.server === undefined ? Promise.resolve() : close(this.server);
  }
}

/** The VAPID public key (an uncompressed P-256 point, base64url) as a verification key. */
async function vapidKey(publicKey: string) {
  const raw = Buffer.from(publicKey, "base64url");
  const jwk: JWK = { kty: "EC", crv: "P-256", x: raw.subarray(1, 33).toString("base64url"), y: raw.subarray(33, 65).toString("base64url") };
  return createLocalJWKSet({ keys: [{ ...jwk, alg: "ES256" }] });
}

export interface FcmReceived {
  project: string;
  message: { token: string; notification: { title: string; body: string }; data: Record<string, string>; android: { collapse_key: string; notification: { notification_count: number } } };
}

/** An FCM HTTP v1 stand-in: the OAuth2 token endpoint and messages:send. */
export class FcmEndpoint {
  private readonly keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  readonly account = {
    type: "service_account",
    project_id: "chat-test",
    private_key_id: "k1",
    private_key: this.keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client_email: "push@chat-test.iam.gserviceaccount.com",
  };
  readonly received: FcmReceived[] = [];
  readonly script = new Script();
  readonly problems: string[] = [];
  tokensIssued = 0;
  private readonly issued = new Set<string>();
  private server: Server | undefined;
  url = "";

  async start(): Promise<this> {
    const publicKey = await importSPKI(this.keys.publicKey.export({ type: "spki", format: "pem" }).toString(), "RS256");
    const server = createServer((req, res) => {
      void (async () => {
        const body = (await readBody(req)).toString("utf8");
        try {
          if (req.url === "/token") {
            const form = new URLSearchParams(body);
            assert.equal(form.get("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
            const { payload, protectedHeader } = await jwtVerify(form.get("assertion") ?? "", publicKey, { issuer: this.account.client_email, audience: `${this.url}/token`, algorithms: ["RS256"] });
            assert.equal(payload["scope"], "https://www.googleapis.com/auth/firebase.messaging");
            assert.equal(protectedHeader.kid, "k1");
            const token = `ya29.${randomBytes(8).toString("hex")}`;
            this.issued.add(token);
            this.tokensIssued++;
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: token, expires_in: 3600, token_type: "Bearer" }));
            return;
          }
          const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url ?? "");
          assert.ok(m, `unexpected path ${req.url ?? ""}`);
          const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
          if (!this.issued.has(bearer)) {
            res.writeHead(401).end(JSON.stringify({ error: { code: 401, status: "UNAUTHENTICATED" } }));
            return;
          }
          const { message } = JSON.parse(body) as { message: FcmReceived["message"] };
          const reply = this.script.next(message.token, { status: 200, body: JSON.stringify({ name: `projects/${m[1] ?? ""}/messages/1` }) });
          if (reply.status < 300) this.received.push({ project: m[1] ?? "", message });
          res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers }).end(reply.body ?? "");
        } catch (err) {
          this.problems.push((err as Error).message);
          res.writeHead(400).end((err as Error).message);
        }
      })();
    });
    this.server = server;
    this.url = await listen(server);
    return this;
  }
  /** An FCM error body naming an FcmError errorCode. */
  static error(code: number, status: string, errorCode: string): string {
    return JSON.stringify({ error: { code, status, details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }] } });
  }
  env(accountFile: string): Record<string, string> {
    return { FCM_SERVICE_ACCOUNT_FILE: accountFile, FCM_TOKEN_URL: `${this.url}/token`, FCM_BASE_URL: this.url };
  }
  stop(): Promise<void> {
    return this.server === undefined ? Promise.resolve() : close(this.server);
  }
}

export interface ApnsReceived {
  token: string;
  headers: Record<string, string | string[] | undefined>;
  payload: { aps: { alert: { title: string; body: string }; badge: number; "thread-id": string }; message_id: string };
}

/** An APNs stand-in over HTTP/2 cleartext (h2c): checks the provider token (ES256, kid, iss). */
export class ApnsEndpoint {
  private readonly keys = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  readonly privateKeyPem = this.keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  readonly keyId = "ABC123DEFG";
  readonly teamId = "TEAM123456";
  readonly received: ApnsReceived[] = [];
  readonly script = new Script();
  readonly problems: string[] = [];
  private server: Http2Server | undefined;
  private readonly sessions = new Set<ServerHttp2Session>();
  url = "";

  async start(): Promise<this> {
    const jwk = { ...(await exportJWK(this.keys.publicKey)), kid: this.keyId, alg: "ES256" };
    const keys = createLocalJWKSet({ keys: [jwk] });
    const server = createH2Server();
    server.on("session", (s) => this.sessions.add(s));
    server.on("stream", (stream, headers) => {
      void (async () => {
        const body = (await readBody(stream)).toString("utf8");
        try {
          assert.equal(headers[":method"], "POST");
          const token = /^\/3\/device\/([0-9a-fA-F]+)$/.exec(String(headers[":path"]))?.[1];
          assert.ok(token, `path ${String(headers[":path"])}`);
          const jwt = /^bearer (.+)$/.exec(String(headers["authorization"]))?.[1] ?? "";
          const { payload, protectedHeader } = await jwtVerify(jwt, keys, { issuer: this.teamId, algorithms: ["ES256"] });
          assert.equal(protectedHeader.kid, this.keyId);
          assert.ok(typeof payload.iat === "number");
          assert.equal(headers["apns-push-type"], "alert");
          assert.ok(headers["apns-topic"], "apns-topic");
          assert.ok(headers["apns-collapse-id"], "apns-collapse-id");
          const reply = this.script.next(token, { status: 200 });
          if (reply.status < 300) this.received.push({ token, headers, payload: JSON.parse(body) as ApnsReceived["payload"] });
          stream.respond({ ":status": reply.status, "apns-id": randomBytes(16).toString("hex"), ...reply.headers });
          stream.end(reply.body ?? "");
        } catch (err) {
          this.problems.push((err as Error).message);
          stream.respond({ ":status": 403 });
          stream.end(JSON.stringify({ reason: "InvalidProviderToken" }));
        }
      })();
    });
    this.server = server;
    this.url = await listen(server);
    return this;
  }
  stopSessions(): void {
    for (const s of this.sessions) s.destroy();
  }
  env(keyFile: string): Record<string, string> {
    return { APNS_KEY_FILE: keyFile, APNS_KEY_ID: this.keyId, APNS_TEAM_ID: this.teamId, APNS_TOPIC: "com.example.chat", APNS_HOST: this.url, APNS_SANDBOX_HOST: this.url };
  }
  stop(): Promise<void> {
    this.stopSessions();
    return this.server === undefined ? Promise.resolve() : close(this.server);
  }
}

