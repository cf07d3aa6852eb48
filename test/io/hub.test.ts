import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse, type Server } from "node:http";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, existsSync, lstatSync, readlinkSync, rmSync, writeFileSync, mkdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { AddressInfo } from "node:net";
import { resolveModel, createTerminalProgress, hubCacheDir, isCheckpointFile, normalizeEtag, repoCacheDir, type HubProgress } from "../../src/io/hub.js";
import { QwenError } from "../../src/errors.js";
import { fixture } from "../helpers/paths.js";

const MODEL_DIR = fixture("models", "tiny-qwen3-vl-dense");
const REPO = "test-org/tiny-qwen3-vl-dense";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const LFS_MIN = 1_000_000; // files above this size are served like LFS files (CDN redirect, sha256)

interface RepoFile {
  name: string;
  data: Buffer;
  sha256: string;
  gitOid: string;
  lfs: boolean;
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const gitOid = (b: Buffer): string => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

function loadRepo(): Map<string, RepoFile> {
  const m = new Map<string, RepoFile>();
  const add = (name: string, data: Buffer): void => {
    m.set(name, { name, data, sha256: sha256(data), gitOid: gitOid(data), lfs: data.length > LFS_MIN });
  };
  for (const n of readdirSync(MODEL_DIR)) add(n, readFileSync(join(MODEL_DIR, n)));
  // files a checkpoint download must skip
  add("README.md", Buffer.from("# tiny\n"));
  add(".gitattributes", Buffer.from("*.safetensors filter=lfs\n"));
  add("pytorch_model.bin", Buffer.alloc(2_000_000, 7));
  add("onnx/model.safetensors", Buffer.alloc(10, 1));
  add("model.gguf", Buffer.alloc(100, 2));
  return m;
}

interface LoggedRequest {
  path: string;
  range?: string;
  auth?: string;
}

class FakeHub {
  server!: Server;
  url = "";
  log: LoggedRequest[] = [];
  /** Cut the connection after this many bytes on the next CDN request for this file. */
  cutNext = new Map<string, number>();
  /** Serve wrong bytes for this file. */
  corrupt = new Set<string>();
  requireToken: string | undefined;
  constructor(readonly files: Map<string, RepoFile>) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  reset(): void {
    this.log = [];
    this.cutNext.clear();
    this.corrupt.clear();
    this.requireToken = undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url!, this.url);
    const path = decodeURIComponent(u.pathname);
    const entry: LoggedRequest = { path };
    if (req.headers.range) entry.range = req.headers.range;
    if (req.headers.authorization) entry.auth = req.headers.authorization;
    this.log.push(entry);
    const authOk = !this.requireToken || req.headers.authorization === `Bearer ${this.requireToken}`;

    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (m) {
      if (m[1] !== REPO || !authOk) {
        res.writeHead(authOk ? 404 : 401, { "content-type": "application/json", "x-error-code": "RepoNotFound" });
        res.end(JSON.stringify({ error: "Repository not found" }));
        return;
      }
      if (m[2] !== "main" && m[2] !== COMMIT) {
        res.writeHead(404, { "content-type": "application/json", "x-error-code": "RevisionNotFound" });
        res.end(JSON.stringify({ error: "Invalid rev id" }));
        return;
      }
      const withBlobs = u.searchParams.get("blobs") === "true";
      const siblings = [...this.files.values()].map((f) => {
        const s: Record<string, unknown> = { rfilename: f.name };
        if (withBlobs) {
          s.blobId = f.gitOid;
          s.size = f.data.length;
          if (f.lfs) s.lfs = { sha256: f.sha256, size: f.data.length, pointerSize: 134 };
        }
        return s;
      });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: REPO, modelId: REPO, sha: COMMIT, siblings }));
      return;
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) {
      const f = this.files.get(m[3]!);
      if (m[1] !== REPO || !authOk || !f || (m[2] !== "main" && m[2] !== COMMIT)) {
        res.writeHead(authOk ? 404 : 401, { "x-error-code": "EntryNotFound" });
        res.end("not found");
        return;
      }
      if (f.lfs) {
        res.writeHead(302, {
          location: `/cdn/${f.sha256}?name=${encodeURIComponent(f.name)}`,
          "x-repo-commit": COMMIT,
          "x-linked-etag": `"${f.sha256}"`,
          "x-linked-size": String(f.data.length),
          etag: `"${f.gitOid}"`,
        });
        res.end();
        return;
      }
      this.sendBytes(req, res, f, { "x-repo-commit": COMMIT, etag: `"${f.gitOid}"` });
      return;
    }
    m = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (m) {
      const f = [...this.files.values()].find((x) => x.sha256 === m![1]);
      if (!f) {
        res.writeHead(404);
        res.end();
        return;
      }
      this.sendBytes(req, res, f, {});
      return;
    }
    res.writeHead(404);
    res.end();
  }

  private sendBytes(req: IncomingMessage, res: ServerResponse, f: RepoFile, headers: Record<string, string>): void {
    let data = f.data;
    if (this.corrupt.has(f.name)) {
      data = Buffer.from(data);
      data[data.length >> 1] ^= 0xff;
    }
    let start = 0;
    const r = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (r) {
      start = Number(r[1]);
      if (start >= data.length) {
        res.writeHead(416, { "content-range": `bytes */${data.length}` });
        res.end();
        return;
      }
    }
    const body = data.subarray(start);
    const h: Record<string, string> = { ...headers, "content-type": "application/octet-stream", "content-length": String(body.length), "accept-ranges": "bytes" };
    if (r) h["content-range"] = `bytes ${start}-${data.length - 1}/${data.length}`;
    res.writeHead(r ? 206 : 200, h);
    const cut = this.cutNext.get(f.name);
    if (cut !== undefined) {
      this.cutNext.delete(f.name);
      res.write(body.subarray(0, cut), () => {
        // give the bytes time to reach the client, then drop the connection mid-body
        setTimeout(() => req.socket.destroy(), 50);
      });
      return;
    }
    res.end(body);
  }
}

const files = loadRepo();
const hub = new FakeHub(files);
const tmpRoots: string[] = [];

function freshEnv(extra: Record<string, string> = {}): Record<string, string> {
  const home = mkdtempSync(join(tmpdir(), "qwen-hub-"));
  tmpRoots.push(home);
  return { HF_HOME: home, HF_ENDPOINT: hub.url, ...extra };
}

const needed = [...files.keys()].filter(isCheckpointFile).sort();
const downloads = (): LoggedRequest[] => hub.log.filter((r) => r.path.includes("/resolve/") || r.path.startsWith("/cdn/"));

before(async () => {
  await hub.start();
});
after(async () => {
  await hub.stop();
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

function checkSnapshot(dir: string, home: string): void {
  const repoDir = join(home, "hub", "models--test-org--tiny-qwen3-vl-dense");
  assert.equal(dir, join(repoDir, "snapshots", COMMIT));
  assert.equal(readFileSync(join(repoDir, "refs", "main"), "utf8"), COMMIT);
  assert.deepEqual(readdirSync(dir).sort(), needed);
  for (const name of needed) {
    const f = files.get(name)!;
    const p = join(dir, name);
    const blobName = f.lfs ? f.sha256 : f.gitOid;
    assert.ok(lstatSync(p).isSymbolicLink(), `${name} is a symlink`);
    assert.equal(readlinkSync(p), join("..", "..", "blobs", blobName));
    assert.equal(sha256(readFileSync(p)), f.sha256, `${name} content`);
  }
  const blobs = readdirSync(join(repoDir, "blobs"));
  assert.equal(blobs.filter((b) => b.endsWith(".incomplete")).length, 0);
  assert.equal(blobs.length, needed.length);
}

test("the fixture repo served by the fake hub has LFS and non-LFS checkpoint files plus files to skip", () => {
  assert.ok(files.get("model.safetensors")!.lfs);
  assert.ok(!files.get("config.json")!.lfs);
  assert.deepEqual(
    [...files.keys()].filter((n) => !isCheckpointFile(n)).sort(),
    [".gitattributes", "README.md", "model.gguf", "onnx/model.safetensors", "pytorch_model.bin"],
  );
});

test("full download into the HF cache layout; second call uses the cache; offline mode", async () => {
  hub.reset();
  const env = freshEnv();
  const events: HubProgress[] = [];
  const dir = await resolveModel(REPO, { env, onProgress: (p) => events.push(p) });
  checkSnapshot(dir, env.HF_HOME!);
  // only the needed files were fetched, each once, the big ones through the CDN redirect
  const got = downloads().filter((r) => r.path.includes("/resolve/")).map((r) => r.path.split(`/resolve/${COMMIT}/`)[1]).sort();
  assert.deepEqual(got, needed);
  assert.equal(hub.log.filter((r) => r.path.startsWith("/cdn/")).length, needed.filter((n) => files.get(n)!.lfs).length);
  assert.ok(hub.log[0]!.path.startsWith(`/api/models/${REPO}/revision/main`));
  const total = needed.reduce((a, n) => a + files.get(n)!.data.length, 0);
  const last = events[events.length - 1]!;
  assert.equal(last.bytesDone, total);
  assert.equal(last.bytesTotal, total);
  assert.equal(events.filter((e) => e.event === "done").length, needed.length);

  // second call: the API is asked for the commit, nothing is downloaded again
  hub.reset();
  const events2: HubProgress[] = [];
  assert.equal(await resolveModel(REPO, { env, onProgress: (p) => events2.push(p) }), dir);
  assert.deepEqual(downloads(), []);
  assert.equal(hub.log.length, 1);
  assert.equal(events2.filter((e) => e.event === "cached").length, needed.length);

  // offline: no request at all; by branch name and by commit
  hub.reset();
  assert.equal(await resolveModel(REPO, { env: { ...env, HF_HUB_OFFLINE: "1" } }), dir);
  assert.equal(await resolveModel(REPO, { env: { ...env, HF_HUB_OFFLINE: "1" }, revision: COMMIT }), dir);
  assert.equal(hub.log.length, 0);
  // offline with a revision never downloaded -> clear error
  await assert.rejects(resolveModel(REPO, { env: { ...env, HF_HUB_OFFLINE: "1" }, revision: "v2" }), (e: unknown) => e instanceof QwenError && /offline/.test(e.message) && e.message.includes(REPO));
  // a deleted blob makes the cached snapshot incomplete -> re-downloaded
  hub.reset();
  const blob = join(env.HF_HOME!, "hub", "models--test-org--tiny-qwen3-vl-dense", "blobs", files.get("config.json")!.gitOid);
  rmSync(blob);
  await resolveModel(REPO, { env });
  assert.deepEqual(downloads().map((r) => r.path), [`/${REPO}/resolve/${COMMIT}/config.json`]);
  checkSnapshot(dir, env.HF_HOME!);
});

test("offline with an empty cache: clear error naming the repo", async () => {
  hub.reset();
  const env = freshEnv({ HF_HUB_OFFLINE: "1" });
  await assert.rejects(resolveModel(REPO, { env }), (e: unknown) => e instanceof QwenError && e.message.includes(REPO) && e.message.includes("HF_HUB_OFFLINE"));
  assert.equal(hub.log.length, 0);
});

test("interrupted download resumes with a Range request and ends with the right sha256", async () => {
  hub.reset();
  const env = freshEnv();
  const size = files.get("model.safetensors")!.data.length;
  const cut = Math.floor(size / 2);
  hub.cutNext.set("model.safetensors", cut);
  const dir = await resolveModel(REPO, { env });
  checkSnapshot(dir, env.HF_HOME!);
  const cdn = hub.log.filter((r) => r.path === `/cdn/${files.get("model.safetensors")!.sha256}`);
  assert.equal(cdn.length, 2);
  assert.equal(cdn[0]!.range, undefined);
  assert.match(cdn[1]!.range ?? "", /^bytes=\d+-$/);
  const resumedAt = Number(/bytes=(\d+)-/.exec(cdn[1]!.range!)![1]);
  assert.ok(resumedAt > 0 && resumedAt <= cut, `resumed at ${resumedAt}, cut at ${cut}`);
});

test("without retries the failed call keeps the .incomplete file and the next call resumes it", async () => {
  hub.reset();
  const env = freshEnv();
  const f = files.get("model.safetensors")!;
  const cut = 3_000_000;
  hub.cutNext.set("model.safetensors", cut);
  await assert.rejects(resolveModel(REPO, { env, maxRetries: 0 }), (e: unknown) => e instanceof QwenError && e.message.includes("model.safetensors") && e.message.includes(".incomplete"));
  const incomplete = join(env.HF_HOME!, "hub", "models--test-org--tiny-qwen3-vl-dense", "blobs", `${f.sha256}.incomplete`);
  const partial = statSync(incomplete).size;
  assert.ok(partial > 0 && partial <= cut);
  hub.log = [];
  const dir = await resolveModel(REPO, { env, maxRetries: 0 });
  checkSnapshot(dir, env.HF_HOME!);
  const cdn = hub.log.filter((r) => r.path === `/cdn/${f.sha256}`);
  assert.deepEqual(cdn.map((r) => r.range), [`bytes=${partial}-`]);
  assert.equal(existsSync(incomplete), false);
});

test("a corrupted LFS file fails the sha256 check and is not placed in the cache", async () => {
  hub.reset();
  const env = freshEnv();
  hub.corrupt.add("model.safetensors");
  await assert.rejects(resolveModel(REPO, { env }), (e: unknown) => e instanceof QwenError && /sha256 mismatch/.test(e.message) && e.message.includes("model.safetensors"));
  const blobs = readdirSync(join(env.HF_HOME!, "hub", "models--test-org--tiny-qwen3-vl-dense", "blobs"));
  assert.ok(!blobs.some((b) => b.startsWith(files.get("model.safetensors")!.sha256)));
  // offline the incomplete snapshot is not accepted
  await assert.rejects(resolveModel(REPO, { env: { ...env, HF_HUB_OFFLINE: "1" } }), QwenError);
});

test("unknown repo, unknown revision, bad repo id and missing directory: clear errors", async () => {
  hub.reset();
  const env = freshEnv();
  await assert.rejects(resolveModel("test-org/does-not-exist", { env }), (e: unknown) => e instanceof QwenError && e.message.includes("test-org/does-not-exist") && e.message.includes("404"));
  await assert.rejects(resolveModel(REPO, { env, revision: "nope" }), (e: unknown) => e instanceof QwenError && e.message.includes('revision "nope"'));
  await assert.rejects(resolveModel("a/b/c", { env }), (e: unknown) => e instanceof QwenError && e.message.includes("a/b/c"));
  await assert.rejects(resolveModel("./no/such/dir", { env }), (e: unknown) => e instanceof QwenError && e.message.includes("not found"));
  // an unreachable endpoint with nothing cached
  await assert.rejects(resolveModel(REPO, { env: { ...env, HF_ENDPOINT: "http://127.0.0.1:1" } }), (e: unknown) => e instanceof QwenError && e.message.includes("cannot reach"));
});

test("HF_TOKEN is sent as a Bearer token; without it a private repo gives an error naming HF_TOKEN", async () => {
  hub.reset();
  hub.requireToken = "hf_secret";
  const env = freshEnv();
  await assert.rejects(resolveModel(REPO, { env }), (e: unknown) => e instanceof QwenError && e.message.includes("HF_TOKEN"));
  hub.log = [];
  const dir = await resolveModel(REPO, { env: { ...env, HF_TOKEN: "hf_secret" } });
  checkSnapshot(dir, env.HF_HOME!);
  const hubRequests = hub.log.filter((r) => !r.path.startsWith("/cdn/"));
  assert.ok(hubRequests.length > 1);
  for (const r of hubRequests) assert.equal(r.auth, "Bearer hf_secret");
});

test("a local directory is returned as is, offline, without any request; HF_HUB_CACHE and HF_HOME", async () => {
  hub.reset();
  assert.equal(await resolveModel(MODEL_DIR, { env: { HF_HUB_OFFLINE: "1", HF_ENDPOINT: hub.url } }), resolve(MODEL_DIR));
  assert.equal(hub.log.length, 0);
  assert.equal(hubCacheDir({ HF_HOME: "/x/hf" }), "/x/hf/hub");
  assert.equal(hubCacheDir({ HF_HOME: "/x/hf", HF_HUB_CACHE: "/y/cache" }), "/y/cache");
  assert.match(hubCacheDir({}), /\.cache\/huggingface\/hub$/);
  assert.equal(repoCacheDir("Qwen/Qwen3-VL-2B-Instruct", "/c"), "/c/models--Qwen--Qwen3-VL-2B-Instruct");
  assert.equal(normalizeEtag('W/"abc"'), "abc");
  // HF_HUB_CACHE is where the files go
  const root = mkdtempSync(join(tmpdir(), "qwen-hubcache-"));
  tmpRoots.push(root);
  const dir = await resolveModel(REPO, { env: { HF_HUB_CACHE: join(root, "c"), HF_ENDPOINT: hub.url } });
  assert.equal(dir, join(root, "c", "models--test-org--tiny-qwen3-vl-dense", "snapshots", COMMIT));
  // a snapshot left by another tool whose blob names we do not know still counts when complete
  const other = join(root, "other");
  mkdirSync(join(other, "models--o--m", "refs"), { recursive: true });
  mkdirSync(join(other, "models--o--m", "snapshots", COMMIT), { recursive: true });
  writeFileSync(join(other, "models--o--m", "refs", "main"), COMMIT);
  writeFileSync(join(other, "models--o--m", "snapshots", COMMIT, "config.json"), "{}");
  writeFileSync(join(other, "models--o--m", "snapshots", COMMIT, "model.safetensors"), "x");
  assert.equal(await resolveModel("o/m", { cacheDir: other, offline: true }), join(other, "models--o--m", "snapshots", COMMIT));
});

test("an AbortSignal stops the download and leaves the partial file for a later resume", async () => {
  hub.reset();
  const env = freshEnv();
  const ac = new AbortController();
  const f = files.get("model.safetensors")!;
  await assert.rejects(
    resolveModel(REPO, {
      env,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.file === "model.safetensors" && p.downloaded > 1_000_000) ac.abort(new Error("user abort"));
      },
    }),
    (e: unknown) => e instanceof Error && e.message === "user abort",
  );
  const incomplete = join(env.HF_HOME!, "hub", "models--test-org--tiny-qwen3-vl-dense", "blobs", `${f.sha256}.incomplete`);
  const partial = statSync(incomplete).size;
  assert.ok(partial > 1_000_000 && partial < f.data.length);
  hub.log = [];
  checkSnapshot(await resolveModel(REPO, { env }), env.HF_HOME!);
  assert.deepEqual(hub.log.filter((r) => r.path === `/cdn/${f.sha256}`).map((r) => r.range), [`bytes=${partial}-`]);
});

test("terminal progress bar: drawn only on a TTY, one line redrawn with \\r, ended with a newline", () => {
  const out: string[] = [];
  const tty = { isTTY: true, columns: 100, write: (s: string) => (out.push(s), true) } as unknown as NodeJS.WriteStream;
  const bar = createTerminalProgress(tty)!;
  bar.update({ file: "model.safetensors", fileIndex: 0, fileCount: 2, downloaded: 50, total: 100, bytesDone: 50, bytesTotal: 200, event: "done" });
  bar.finish();
  assert.equal(out.length, 2);
  assert.match(out[0]!, /^\rmodel\.safetensors +\[#+\.+\] +25% 50 B\/200 B .*\(1\/2\)/);
  assert.equal(out[1], "\n");
  assert.equal(createTerminalProgress({ isTTY: false } as unknown as NodeJS.WriteStream), undefined);
});
