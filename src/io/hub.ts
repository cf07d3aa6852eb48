/**
 * Hugging Face Hub download client for checkpoints.
 *
 * Files land in a cache laid out like huggingface_hub's own, so both tools share it:
 *   {HF_HUB_CACHE}/models--{org}--{name}/
 *     blobs/{sha256 for LFS files, git blob sha1 otherwise}
 *     snapshots/{commit}/{file}  -> ../../blobs/{id}   (symlink; a copy where symlinks fail)
 *     refs/{revision}            holding the commit hash
 * HF_HUB_CACHE defaults to $HF_HOME/hub, HF_HOME to ~/.cache/huggingface.
 *
 * Protocol: `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true` gives the commit `sha`
 * and `siblings: [{rfilename, blobId, size, lfs?: {sha256, size, pointerSize}}]`; files come from
 * `{endpoint}/{repo}/resolve/{rev}/{file}` (LFS files redirect to a CDN; the first response carries
 * `X-Repo-Commit`, `X-Linked-Etag` / `ETag` and `X-Linked-Size`). Downloads go to
 * `blobs/{id}.incomplete`, continue with a `Range` request after an interruption, are checked
 * against the size and (LFS) sha256 the hub reports, then renamed into place.
 *
 * Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (Authorization: Bearer),
 * HF_HUB_OFFLINE=1 (cache only), HF_HOME, HF_HUB_CACHE.
 * Not done: cross-process locking (two processes downloading the same blob at the same time may
 * both write its .incomplete file; the size/sha256 check then fails rather than passing bad data).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { copyFile, mkdir, open, readFile, readdir, rename, rm, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { QwenError } from "../errors.js";

export interface HubProgress {
  /** File being transferred (repo-relative path). */
  file: string;
  /** 0-based index of the file among those needed, and their count. */
  fileIndex: number;
  fileCount: number;
  /** Bytes of this file present so far (including a resumed part) and its size when known. */
  downloaded: number;
  total: number | undefined;
  /** Bytes of all needed files present so far (cached ones included) and their total when known. */
  bytesDone: number;
  bytesTotal: number | undefined;
  /** "download": bytes arrived; "cached": already in the cache; "done": file complete. */
  event: "download" | "cached" | "done";
}

export interface ResolveModelOptions {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  /** Hub cache directory (default HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  onProgress?: (p: HubProgress) => void;
  signal?: AbortSignal;
  /** Overrides HF_TOKEN. */
  token?: string;
  /** Overrides HF_ENDPOINT. */
  endpoint?: string;
  /** Overrides HF_HUB_OFFLINE. */
  offline?: boolean;
  /** Draw a progress bar on stderr when it is a TTY and no onProgress is given (default true). */
  progressBar?: boolean;
  /** Retries (with resume) after a failed transfer of one file (default 5). */
  maxRetries?: number;
  /** Environment to read HF_* variables from (default process.env). */
  env?: Record<string, string | undefined>;
}

interface Sibling {
  rfilename: string;
  blobId?: string;
  size?: number;
  lfs?: { sha256?: string; size?: number };
}

const COMMIT_RE = /^[0-9a-f]{40}$/;
const REPO_RE = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;

const CHECKPOINT_FILES = new Set([
  "config.json",
  "generation_config.json",
  "preprocessor_config.json",
  "video_preprocessor_config.json",
  "processor_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "vocab.json",
  "merges.txt",
  "added_tokens.json",
  "special_tokens_map.json",
  "chat_template.json",
  "chat_template.jinja",
  "model.safetensors.index.json",
]);

/** Files a checkpoint needs: configs, tokenizer, chat template, top-level *.safetensors and the index. */
export function isCheckpointFile(name: string): boolean {
  if (name.includes("/")) return false;
  return CHECKPOINT_FILES.has(name) || name.endsWith(".safetensors");
}

const truthy = (v: string | undefined): boolean => v !== undefined && ["1", "true", "yes", "on"].includes(v.trim().toLowerCase());

/** The hub cache directory from the environment: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.HF_HUB_CACHE) return resolve(expandHome(env.HF_HUB_CACHE));
  const home = env.HF_HOME ? expandHome(env.HF_HOME) : join(homedir(), ".cache", "huggingface");
  return resolve(home, "hub");
}

function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p;
}

/** models--{org}--{name} under the cache directory. */
export function repoCacheDir(repo: string, cacheDir: string): string {
  return join(cacheDir, `models--${repo.split("/").join("--")}`);
}

function looksLikePath(s: string): boolean {
  return s.startsWith(".") || s.startsWith("/") || s.startsWith("~") || s.includes("\\") || /^[A-Za-z]:/.test(s);
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function fileSize(p: string): Promise<number | undefined> {
  try {
    const s = await stat(p);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

function validateRepo(repo: string): void {
  if (!REPO_RE.test(repo) || repo.includes("..") || repo.includes("--") || repo.length > 200) {
    throw new QwenError(`"${repo}" is neither an existing directory nor a valid Hugging Face repo id (expected "org/name")`);
  }
}

/**
 * A local checkpoint directory, or a Hugging Face repo id downloaded (or found) in the hub cache.
 * Returns the directory holding config.json, the tokenizer files and the weights.
 */
export async function resolveModel(repoOrDir: string, options: ResolveModelOptions = {}): Promise<string> {
  if (typeof repoOrDir !== "string" || repoOrDir.length === 0) throw new QwenError("model must be a directory or a Hugging Face repo id");
  const asPath = resolve(expandHome(repoOrDir));
  if (await isDir(asPath)) return asPath;
  if (looksLikePath(repoOrDir)) throw new QwenError(`model directory not found: ${asPath}`);
  validateRepo(repoOrDir);

  const env = options.env ?? process.env;
  const revision = options.revision ?? "main";
  if (revision.length === 0 || revision.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new QwenError(`invalid revision "${revision}"`);
  }
  const cacheDir = options.cacheDir ? resolve(expandHome(options.cacheDir)) : hubCacheDir(env);
  const offline = options.offline ?? truthy(env.HF_HUB_OFFLINE);
  const repoDir = repoCacheDir(repoOrDir, cacheDir);

  if (offline) {
    const dir = await cachedSnapshot(repoDir, revision);
    if (dir) return dir;
    throw new QwenError(
      `offline mode (HF_HUB_OFFLINE=1): ${repoOrDir} at revision "${revision}" is not in the cache ${cacheDir}; ` +
        "download it once with network access or pass a local directory",
    );
  }

  const endpoint = (options.endpoint ?? env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
  const token = options.token ?? env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  const client = new HubClient(endpoint, token, options.signal);
  let onProgress = options.onProgress;
  let finishBar: (() => void) | undefined;
  if (!onProgress && (options.progressBar ?? true)) {
    const bar = createTerminalProgress();
    if (bar) {
      onProgress = bar.update;
      finishBar = bar.finish;
    }
  }
  try {
    let info: { sha: string; siblings: Sibling[] };
    try {
      info = await client.repoInfo(repoOrDir, revision);
    } catch (e) {
      if (e instanceof NetworkError) {
        // like huggingface_hub: when the hub cannot be reached, a complete cached snapshot will do
        const dir = await cachedSnapshot(repoDir, revision);
        if (dir) return dir;
        throw new QwenError(`cannot reach ${endpoint} to download ${repoOrDir} (${e.message}); nothing usable in the cache ${cacheDir}`);
      }
      throw e;
    }
    const files = info.siblings.filter((s) => isCheckpointFile(s.rfilename));
    if (!files.some((f) => f.rfilename === "config.json")) {
      throw new QwenError(`${repoOrDir} at revision "${revision}" has no config.json: not a model checkpoint`);
    }
    if (!files.some((f) => f.rfilename.endsWith(".safetensors"))) {
      throw new QwenError(`${repoOrDir} at revision "${revision}" has no .safetensors weights (other weight formats are not supported)`);
    }
    const snapshotDir = join(repoDir, "snapshots", info.sha);
    await mkdir(join(repoDir, "blobs"), { recursive: true });
    await mkdir(snapshotDir, { recursive: true });
    if (revision !== info.sha) await writeAtomic(join(repoDir, "refs", ...revision.split("/")), info.sha);

    const sizeOf = (s: Sibling): number | undefined => s.lfs?.size ?? s.size;
    const known = files.every((f) => sizeOf(f) !== undefined);
    const bytesTotal = known ? files.reduce((a, f) => a + sizeOf(f)!, 0) : undefined;
    let bytesDone = 0;
    for (const [fileIndex, f] of files.entries()) {
      const target = join(snapshotDir, ...f.rfilename.split("/"));
      const expectedSize = sizeOf(f);
      const have = await fileSize(target); // follows the symlink: a dangling link counts as missing
      if (have !== undefined && (expectedSize === undefined || have === expectedSize)) {
        bytesDone += have;
        onProgress?.({ file: f.rfilename, fileIndex, fileCount: files.length, downloaded: have, total: have, bytesDone, bytesTotal, event: "cached" });
        continue;
      }
      const base = bytesDone;
      const size = await client.download({
        repo: repoOrDir,
        commit: info.sha,
        sibling: f,
        repoDir,
        target,
        maxRetries: options.maxRetries ?? 5,
        onBytes: (downloaded, total) =>
          onProgress?.({ file: f.rfilename, fileIndex, fileCount: files.length, downloaded, total, bytesDone: base + downloaded, bytesTotal, event: "download" }),
      });
      bytesDone += size;
      onProgress?.({ file: f.rfilename, fileIndex, fileCount: files.length, downloaded: size, total: size, bytesDone, bytesTotal, event: "done" });
    }
    return snapshotDir;
  } finally {
    finishBar?.();
  }
}

/** The snapshot a revision points to, if it looks complete (config.json and all weights present). */
async function cachedSnapshot(repoDir: string, revision: string): Promise<string | undefined> {
  let commit: string | undefined;
  if (COMMIT_RE.test(revision)) commit = revision;
  else {
    try {
      commit = (await readFile(join(repoDir, "refs", ...revision.split("/")), "utf8")).trim();
    } catch {
      return undefined;
    }
  }
  if (!COMMIT_RE.test(commit)) return undefined;
  const dir = join(repoDir, "snapshots", commit);
  if ((await fileSize(join(dir, "config.json"))) === undefined) return undefined;
  const index = join(dir, "model.safetensors.index.json");
  if ((await fileSize(index)) !== undefined) {
    try {
      const weightMap = (JSON.parse(await readFile(index, "utf8")) as { weight_map?: Record<string, string> }).weight_map ?? {};
      for (const shard of new Set(Object.values(weightMap))) if ((await fileSize(join(dir, shard))) === undefined) return undefined;
      return dir;
    } catch {
      return undefined;
    }
  }
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const n of names) if (n.endsWith(".safetensors") && (await fileSize(join(dir, n))) !== undefined) return dir;
  return undefined;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

class NetworkError extends Error {}

/** Quoted / weak ETag -> bare value (as huggingface_hub normalises it). */
export function normalizeEtag(etag: string | null | undefined): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

function describeStatus(status: number): string {
  return status === 401 || status === 403 ? `HTTP ${status}: access denied; for a private or gated repo set HF_TOKEN` : `HTTP ${status}`;
}

interface DownloadJob {
  repo: string;
  commit: string;
  sibling: Sibling;
  repoDir: string;
  target: string;
  maxRetries: number;
  onBytes: (downloaded: number, total: number | undefined) => void;
}

class HubClient {
  constructor(
    private readonly endpoint: string,
    private readonly token: string | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {}

  private headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { "user-agent": "qwen3-vl-ts", ...extra };
    // the token goes to the hub only, never to the CDN a download redirects to
    if (this.token && new URL(url).origin === new URL(this.endpoint).origin) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: this.signal });
    } catch (e) {
      if (this.signal?.aborted) throw this.signal.reason ?? e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new NetworkError(`${cause?.code ?? cause?.message ?? (e as Error).message} for ${url}`);
    }
  }

  async repoInfo(repo: string, revision: string): Promise<{ sha: string; siblings: Sibling[] }> {
    const url = `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const res = await this.fetch(url, { headers: this.headers(url, { accept: "application/json" }) });
    if (!res.ok) {
      const code = res.headers.get("x-error-code");
      await res.body?.cancel();
      if (code === "RevisionNotFound") throw new QwenError(`revision "${revision}" not found in ${repo} (HTTP ${res.status} from ${url})`);
      if (res.status === 404 || code === "RepoNotFound") throw new QwenError(`Hugging Face repository ${repo} not found (HTTP ${res.status} from ${url}); check the name, or set HF_TOKEN if it is private or gated`);
      throw new QwenError(`cannot get the file list of ${repo} at revision "${revision}": ${describeStatus(res.status)} from ${url}`);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch (e) {
      throw new QwenError(`invalid JSON from ${url}: ${(e as Error).message}`);
    }
    const b = body as { sha?: unknown; siblings?: unknown };
    if (typeof b.sha !== "string" || !COMMIT_RE.test(b.sha) || !Array.isArray(b.siblings)) {
      throw new QwenError(`unexpected answer from ${url}: no commit "sha" or "siblings" list`);
    }
    const siblings: Sibling[] = [];
    for (const s of b.siblings as unknown[]) {
      const o = s as Sibling;
      if (o && typeof o.rfilename === "string") siblings.push(o);
    }
    return { sha: b.sha, siblings };
  }

  /** GET with manual redirects; returns the final response and the first (hub) response's headers. */
  private async get(url: string, extra: Record<string, string>): Promise<{ res: Response; first: Headers }> {
    let current = url;
    let first: Headers | undefined;
    for (let hop = 0; hop < 10; hop++) {
      const res = await this.fetch(current, { headers: this.headers(current, extra), redirect: "manual" });
      first ??= res.headers;
      if (res.status >= 300 && res.status < 400 && res.headers.get("location")) {
        await res.body?.cancel();
        current = new URL(res.headers.get("location")!, current).toString();
        continue;
      }
      return { res, first };
    }
    throw new QwenError(`too many redirects downloading ${url}`);
  }

  async download(job: DownloadJob): Promise<number> {
    const { sibling: f, repo } = job;
    const url = `${this.endpoint}/${repo}/resolve/${job.commit}/${f.rfilename.split("/").map(encodeURIComponent).join("/")}`;
    const expectedSha = f.lfs?.sha256?.toLowerCase();
    let expectedSize = f.lfs?.size ?? f.size;
    let blobId = expectedSha ?? f.blobId;
    let attempt = 0;
    for (;;) {
      let incomplete: string | undefined;
      try {
        // the blob may already be there (shared with another revision): just link it
        const existingBlob = blobId ? join(job.repoDir, "blobs", blobId) : undefined;
        const blobSize = existingBlob ? await fileSize(existingBlob) : undefined;
        if (existingBlob && blobSize !== undefined && (expectedSize === undefined || blobSize === expectedSize)) {
          await linkSnapshot(existingBlob, job.target);
          return blobSize;
        }
        let offset = 0;
        if (blobId) {
          incomplete = join(job.repoDir, "blobs", `${blobId}.incomplete`);
          offset = (await fileSize(incomplete)) ?? 0;
          if (expectedSize !== undefined && offset > expectedSize) {
            await rm(incomplete, { force: true });
            offset = 0;
          }
        }
        let res: Response | undefined;
        if (!(expectedSize !== undefined && offset === expectedSize && offset > 0)) {
          const got = await this.get(url, offset > 0 ? { range: `bytes=${offset}-`, "accept-encoding": "identity" } : { "accept-encoding": "identity" });
          res = got.res;
          if (!blobId) {
            blobId = normalizeEtag(got.first.get("x-linked-etag") ?? got.first.get("etag"));
            if (!blobId || !/^[A-Za-z0-9._-]+$/.test(blobId)) {
              await res.body?.cancel();
              throw new QwenError(`the hub sent no usable ETag for ${repo}/${f.rfilename}; cannot place it in the cache`);
            }
            incomplete = join(job.repoDir, "blobs", `${blobId}.incomplete`);
            await rm(incomplete, { force: true });
            const linked = Number(got.first.get("x-linked-size") ?? res.headers.get("content-length") ?? NaN);
            if (expectedSize === undefined && Number.isFinite(linked)) expectedSize = linked;
          }
          if (res.status === 416) {
            // our partial file does not fit the remote one any more: start over
            await res.body?.cancel();
            await rm(incomplete!, { force: true });
            throw new RetryableError(`HTTP 416 resuming ${f.rfilename}`);
          }
          if (res.status !== 200 && res.status !== 206) {
            await res.body?.cancel();
            const msg = `cannot download ${repo}/${f.rfilename}: ${describeStatus(res.status)} from ${url}`;
            if (res.status >= 500 || res.status === 429) throw new RetryableError(msg);
            throw new QwenError(msg);
          }
          if (res.status === 206) {
            const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
            if (!m || Number(m[1]) !== offset) {
              await res.body?.cancel();
              await rm(incomplete!, { force: true });
              throw new RetryableError(`bad Content-Range resuming ${f.rfilename}`);
            }
          } else if (offset > 0) {
            offset = 0; // the server ignored the Range header: rewrite from the start
          }
        }
        const hash = expectedSha ? createHash("sha256") : undefined;
        if (hash && offset > 0) {
          for await (const chunk of createReadStream(incomplete!, { end: offset - 1 })) hash.update(chunk as Buffer);
        }
        const fh = await open(incomplete!, offset > 0 ? "a" : "w");
        let written = offset;
        try {
          job.onBytes(written, expectedSize);
          if (res?.body) {
            const reader = res.body.getReader();
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              hash?.update(value);
              await fh.write(value);
              written += value.length;
              job.onBytes(written, expectedSize);
            }
          }
        } finally {
          await fh.close();
        }
        const size = (await fileSize(incomplete!)) ?? 0;
        if (expectedSize !== undefined && size !== expectedSize) {
          if (size < expectedSize) throw new RetryableError(`${f.rfilename}: connection ended at ${size} of ${expectedSize} bytes`);
          await rm(incomplete!, { force: true });
          throw new QwenError(`downloaded ${repo}/${f.rfilename} has ${size} bytes, the hub reports ${expectedSize}; removed it, try again`);
        }
        if (hash) {
          const digest = hash.digest("hex");
          if (digest !== expectedSha) {
            await rm(incomplete!, { force: true });
            throw new QwenError(`sha256 mismatch for ${repo}/${f.rfilename}: got ${digest}, the hub reports ${expectedSha}; removed the download, try again`);
          }
        }
        const blob = join(job.repoDir, "blobs", blobId!);
        await rename(incomplete!, blob);
        await linkSnapshot(blob, job.target);
        return size;
      } catch (e) {
        if (e instanceof QwenError || this.signal?.aborted) throw e;
        attempt++;
        if (attempt > job.maxRetries) {
          const msg = e instanceof Error ? e.message : String(e);
          const partial = incomplete ? ` (partial file kept for resuming: ${incomplete})` : "";
          throw new QwenError(`download of ${repo}/${f.rfilename} failed after ${attempt} attempt(s): ${msg}${partial}`);
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** (attempt - 1))));
      }
    }
  }
}

class RetryableError extends Error {}

/** snapshots/{commit}/{file} -> relative symlink to the blob (a copy where symlinks are not allowed). */
async function linkSnapshot(blob: string, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  try {
    await symlink(relative(dirname(target), blob), tmp);
  } catch {
    await copyFile(blob, tmp);
  }
  try {
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Terminal progress bar.

function formatBytes(n: number): string {
  const u = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

/**
 * A one-line progress bar on a TTY stream (stderr by default): undefined when the stream is not a
 * terminal. `update` is an onProgress callback; `finish` ends the line.
 */
export function createTerminalProgress(stream: NodeJS.WriteStream = process.stderr): { update: (p: HubProgress) => void; finish: () => void } | undefined {
  if (!stream.isTTY) return undefined;
  let last = 0;
  let drawn = false;
  const start = Date.now();
  let startBytes: number | undefined;
  const update = (p: HubProgress): void => {
    const now = Date.now();
    if (p.event === "download" && now - last < 100) return;
    last = now;
    if (p.event === "cached") return;
    startBytes ??= p.bytesDone;
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 60));
    const frac = p.bytesTotal ? Math.min(1, p.bytesDone / p.bytesTotal) : p.total ? Math.min(1, p.downloaded / p.total) : 0;
    const filled = Math.round(frac * width);
    const secs = Math.max(0.001, (now - start) / 1000);
    const rate = (p.bytesDone - startBytes) / secs;
    const name = p.file.length > 28 ? "…" + p.file.slice(-27) : p.file;
    const totalText = p.bytesTotal !== undefined ? formatBytes(p.bytesTotal) : "?";
    const line = `${name.padEnd(28)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(p.bytesDone)}/${totalText} ${formatBytes(rate)}/s (${p.fileIndex + 1}/${p.fileCount})`;
    stream.write(`\r${line}\x1b[K`);
    drawn = true;
  };
  const finish = (): void => {
    if (drawn) stream.write("\n");
    drawn = false;
  };
  return { update, finish };
}
