import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { fileURLToPath } from 'url';
import AdmZip from 'adm-zip';
import ortPackage from 'onnxruntime-node/package.json';
import { ModelshipError } from '../util/errors';
import { exchange } from '../util/http';
import { writeFileAtomic } from '../util/fsx';
import { cacheDir, checkDigests, downloadVerified, ensureToolCacheEnv, FileDigests, findCached, hashFile, shownUrl } from '../util/toolcache';

/**
 * ONNX Runtime's CUDA provider for `gpu: true`: libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so
 * of exactly the bundled onnxruntime-node's version, which the image puts next to libonnxruntime.so.1. They come
 * from the NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux (nuget.org, or a NuGet v3 feed that mirrors it), checked
 * against the feed's SHA-512 packageHash, or from `provider-package` (a mirror URL or a local .nupkg) checked against
 * `provider-package-sha256`; only verified libraries enter the tool cache, where later runs find them offline.
 */

/** The bundled onnxruntime-node's version (read at build time: ncc inlines the package.json). */
export const ORT_VERSION: string = ortPackage.version;

export const PROVIDER_PACKAGE_ID = 'Microsoft.ML.OnnxRuntime.Gpu.Linux';
export const DEFAULT_NUGET_SOURCE = 'https://api.nuget.org/v3/index.json';
/** The provider libraries, and where a .nupkg keeps them. */
export const PROVIDER_LIBS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'] as const;
export const NUPKG_NATIVE_DIR = 'runtimes/linux-x64/native/';
/** The tool-cache entry: onnxruntime-gpu-linux/<version>/x64/ */
export const TOOL_NAME = 'onnxruntime-gpu-linux';
const TOOL_ARCH = 'x64';
export const PROVENANCE_FILE = 'modelship-provenance.json';

/** Where the provider libraries come from: inputs `provider-package`, `provider-package-sha256`, `nuget-source`. */
export interface ProviderSource {
  /** ONNX Runtime version the libraries must be (ORT_VERSION) */
  version: string;
  /** '' (NuGet), an http(s) URL of a .nupkg, or a local .nupkg path */
  package: string;
  /** hex sha256 the package must have; required with `package`, an extra pin for NuGet */
  sha256: string;
  /** NuGet v3 service index ('' = nuget.org) */
  nugetSource: string;
}

export interface ProviderLog {
  info(line: string): void;
  warn?(line: string): void;
  /** the stages' Logger spells it so */
  warning?(line: string): void;
}

/** The provider libraries, ready to copy into the image. */
export interface GpuProviders {
  /** the tool-cache directory holding them (and modelship-provenance.json) */
  dir: string;
  /** absolute paths of libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so */
  files: string[];
  /** where the package came from and how it was verified (modelship-provenance.json) */
  provenance: Record<string, string>;
  /** true when found in the tool cache (no network) */
  cached: boolean;
}

type Plan =
  | { kind: 'nuget'; version: string; index: string; sha256: string }
  | { kind: 'url'; version: string; url: string; sha256: string }
  | { kind: 'file'; version: string; file: string; sha256: string };

/** A downloaded or local package whose checksum has been verified. */
interface VerifiedPackage extends FileDigests {
  file: string;
  source: string;
  verifiedAgainst: string;
  /** a download to delete once extracted */
  temporary: boolean;
}

/**
 * The GPU provider libraries for `src`: from the tool cache when there (and, with `sha256` given, recorded with that
 * sha256), else fetched, verified, extracted and cached. Bad inputs fail before any download; a checksum mismatch,
 * an HTTP error or a corrupt package fails naming the URL or file, and leaves the cache as it was.
 */
export async function resolveGpuProviders(src: ProviderSource, log: ProviderLog): Promise<GpuProviders> {
  const plan = planSource(src);
  if (plan.version !== ORT_VERSION)
    warn(log, `GPU provider ${plan.version} asked for, but the bundled onnxruntime is ${ORT_VERSION}: ONNX Runtime loads only providers of its own version`);
  ensureToolCacheEnv();
  const hit = await fromCache(plan, log);
  if (hit) return hit;
  const pkg = await fetchPackage(plan, log);
  try {
    return await install(pkg, plan.version, log);
  } finally {
    if (pkg.temporary) fs.rmSync(pkg.file, { force: true });
  }
}

/** Check the inputs and decide where the package comes from; nothing is fetched yet. */
function planSource(src: ProviderSource): Plan {
  const version = src.version.trim();
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
    throw new ModelshipError('input', `ONNX Runtime version "${src.version}" is not an exact version (x.y.z)`);
  }
  const sha256 = src.sha256
    .trim()
    .replace(/^sha256:/i, '')
    .toLowerCase();
  if (sha256 && !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new ModelshipError('input', `input "provider-package-sha256" must be a sha256 (64 hex digits), got "${src.sha256}"`, {
      field: 'provider-package-sha256',
    });
  }
  const pkg = src.package.trim();
  if (!pkg) {
    const index = src.nugetSource.trim() || DEFAULT_NUGET_SOURCE;
    if (!/^https?:\/\//i.test(index)) {
      throw new ModelshipError(
        'input',
        `input "nuget-source" must be the http(s) URL of a NuGet v3 service index (like ${DEFAULT_NUGET_SOURCE}), got "${index}"`,
        { field: 'nuget-source' },
      );
    }
    return { kind: 'nuget', version, index, sha256 };
  }
  if (!sha256) {
    throw new ModelshipError(
      'input',
      `input "provider-package" needs input "provider-package-sha256" (the package's sha256, hex): a package from outside the NuGet feed is verified against it`,
      { field: 'provider-package-sha256' },
    );
  }
  if (/^https?:\/\//i.test(pkg)) return { kind: 'url', version, url: pkg, sha256 };
  if (/^file:/i.test(pkg)) {
    try {
      return { kind: 'file', version, file: fileURLToPath(pkg), sha256 };
    } catch (e) {
      throw new ModelshipError('input', `input "provider-package": ${(e as Error).message}`, { field: 'provider-package' });
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pkg)) {
    throw new ModelshipError('input', `input "provider-package" must be an http(s) URL or a local .nupkg path, got "${shownUrl(pkg)}"`, {
      field: 'provider-package',
    });
  }
  return { kind: 'file', version, file: path.resolve(pkg), sha256 };
}

/** A GpuProviders for a directory holding both libraries and the provenance record, or undefined. */
function readInstalled(dir: string): GpuProviders | undefined {
  const files = PROVIDER_LIBS.map((l) => path.join(dir, l));
  if (!files.every((f) => fs.existsSync(f))) return undefined;
  try {
    const provenance = JSON.parse(fs.readFileSync(path.join(dir, PROVENANCE_FILE), 'utf8')) as Record<string, string>;
    return { dir, files, provenance, cached: true };
  } catch {
    return undefined;
  }
}

/** The cached libraries, unless absent, incomplete, or recorded with another sha256 than the one asked for. */
async function fromCache(plan: Plan, log: ProviderLog): Promise<GpuProviders | undefined> {
  const dir = await findCached(TOOL_NAME, plan.version, TOOL_ARCH);
  if (!dir) return undefined;
  const found = readInstalled(dir);
  if (!found) {
    warn(log, `the tool cache's ${TOOL_NAME} ${plan.version} (${dir}) is incomplete; fetching it again`);
    return undefined;
  }
  if (plan.sha256 && found.provenance.sha256 !== plan.sha256) {
    log.info(
      `GPU provider: the cached ${PROVIDER_PACKAGE_ID} ${plan.version} has sha256 ${found.provenance.sha256}, not ${plan.sha256}; fetching the package given`,
    );
    return undefined;
  }
  log.info(
    `GPU provider: ${PROVIDER_PACKAGE_ID} ${plan.version} from the tool cache (${dir}), verified against ${found.provenance.verifiedAgainst} when fetched from ${found.provenance.source}`,
  );
  return found;
}

/** Fetch (or locate) the package and verify its checksum; nothing unverified leaves this function. */
async function fetchPackage(plan: Plan, log: ProviderLog): Promise<VerifiedPackage> {
  switch (plan.kind) {
    case 'nuget':
      return fromNuget(plan, log);
    case 'url': {
      log.info(`GPU provider: downloading ${PROVIDER_PACKAGE_ID} ${plan.version} from ${shownUrl(plan.url)}`);
      const got = await downloadVerified(plan.url, { sha256: plan.sha256 }, `the ${PROVIDER_PACKAGE_ID} package`);
      return { ...got, source: shownUrl(plan.url), verifiedAgainst: 'provider-package-sha256', temporary: true };
    }
    case 'file': {
      checkLocalFile(plan.file);
      const digests = await hashFile(plan.file);
      checkDigests(digests, { sha256: plan.sha256 }, plan.file, `the ${PROVIDER_PACKAGE_ID} package`);
      return { ...digests, file: plan.file, source: plan.file, verifiedAgainst: 'provider-package-sha256', temporary: false };
    }
  }
}

/** A local package must be a readable file: otherwise an input error naming it (before hashing it). */
function checkLocalFile(file: string): void {
  let why = '';
  try {
    if (fs.statSync(file).isDirectory()) why = 'it is a directory, expected a .nupkg file';
    else fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    why = err.code === 'ENOENT' ? 'no such file' : err.message;
  }
  if (why) throw new ModelshipError('input', `cannot read input "provider-package": ${why}`, { file, field: 'provider-package' });
}

// ---- NuGet v3 -------------------------------------------------------------------------------------------------

/** Registration hives by preference: 3.6.0 (gzip, SemVer 2.0.0 packages included), then the older ones. */
const REGISTRATION_TYPES = [
  'RegistrationsBaseUrl/3.6.0',
  'RegistrationsBaseUrl/3.4.0',
  'RegistrationsBaseUrl/3.0.0-rc',
  'RegistrationsBaseUrl/3.0.0-beta',
  'RegistrationsBaseUrl',
];

/**
 * Find the package on a NuGet v3 feed (service index → registration leaf → catalog entry) and download it, checked
 * against the catalog's SHA-512 packageHash (and `sha256` too when given).
 */
async function fromNuget(plan: Extract<Plan, { kind: 'nuget' }>, log: ProviderLog): Promise<VerifiedPackage> {
  const id = PROVIDER_PACKAGE_ID.toLowerCase();
  const version = plan.version.toLowerCase();
  const feed = shownUrl(plan.index);
  const index = await getJson(plan.index, 'the NuGet service index');
  const resources = Array.isArray(index.resources) ? (index.resources as { '@id'?: unknown; '@type'?: unknown }[]) : [];
  const resource = (type: string) => {
    const r = resources.find((x) => x['@type'] === type && typeof x['@id'] === 'string');
    return r ? withSlash(r['@id'] as string) : undefined;
  };
  const registrations = REGISTRATION_TYPES.map(resource).find((u) => u);
  if (!registrations) throw new ModelshipError('io', `the NuGet service index ${feed} lists no RegistrationsBaseUrl resource (is it a NuGet v3 feed?)`);

  const leafUrl = `${registrations}${id}/${version}.json`;
  const leaf = await getJson(leafUrl, `${PROVIDER_PACKAGE_ID} ${plan.version}`, `${PROVIDER_PACKAGE_ID} ${plan.version} is not on the feed ${feed}`);
  if (leaf.listed === false)
    warn(log, `${PROVIDER_PACKAGE_ID} ${plan.version} is unlisted on ${feed}; using it anyway (it is the bundled onnxruntime's version)`);
  const entry = leaf.catalogEntry;
  const catalogUrl = typeof entry === 'string' ? entry : isJsonObject(entry) ? entry['@id'] : undefined;
  if (typeof catalogUrl !== 'string') throw new ModelshipError('io', `the registration ${leafUrl} has no catalogEntry`);
  const catalog = await getJson(catalogUrl, `the catalog entry of ${PROVIDER_PACKAGE_ID} ${plan.version}`);
  const packageHash = catalog.packageHash;
  if (typeof packageHash !== 'string' || !packageHash) throw new ModelshipError('io', `the catalog entry ${catalogUrl} has no packageHash`);
  if (typeof catalog.packageHashAlgorithm !== 'string' || catalog.packageHashAlgorithm.toUpperCase() !== 'SHA512') {
    throw new ModelshipError('io', `the catalog entry ${catalogUrl} gives a ${String(catalog.packageHashAlgorithm)} packageHash; modelship checks SHA512`);
  }
  if (typeof catalog.version === 'string' && catalog.version.toLowerCase() !== version) {
    throw new ModelshipError('io', `the catalog entry ${catalogUrl} is for version ${catalog.version}, not ${plan.version}`);
  }

  let url = typeof leaf.packageContent === 'string' ? leaf.packageContent : '';
  if (!url) {
    const base = resource('PackageBaseAddress/3.0.0');
    if (!base)
      throw new ModelshipError(
        'io',
        `neither the registration ${leafUrl} (packageContent) nor the service index ${feed} (PackageBaseAddress/3.0.0) says where to download the package`,
      );
    url = `${base}${id}/${version}/${id}.${version}.nupkg`;
  }
  log.info(`GPU provider: downloading ${PROVIDER_PACKAGE_ID} ${plan.version} from ${shownUrl(url)}`);
  const got = await downloadVerified(url, { sha512Base64: packageHash, sha256: plan.sha256 || undefined }, `the ${PROVIDER_PACKAGE_ID} package`);
  const verifiedAgainst = plan.sha256 ? 'nuget packageHash, provider-package-sha256' : 'nuget packageHash';
  return { ...got, source: shownUrl(url), verifiedAgainst, temporary: true };
}

function withSlash(u: string): string {
  return u.endsWith('/') ? u : `${u}/`;
}

const MAX_REDIRECTS = 5;
const JSON_TIMEOUT_MS = 60_000;

/**
 * GET a NuGet JSON document: redirects followed, gzip bodies inflated (NuGet's registration hives are served
 * gzip-encoded), any other non-2xx an error naming the URL; a 404 says `missing` when given.
 */
async function getJson(url: string, what: string, missing?: string): Promise<Record<string, unknown>> {
  let at = url;
  for (let hop = 0; ; hop++) {
    let reply;
    try {
      reply = await exchange(at, { headers: { accept: 'application/json', 'accept-encoding': 'gzip', 'user-agent': 'modelship' }, timeout: JSON_TIMEOUT_MS });
    } catch (e) {
      throw new ModelshipError('io', `cannot fetch ${what} from ${shownUrl(at)}: ${(e as Error).message}`);
    }
    const location = reply.headers.location;
    if (reply.status >= 300 && reply.status < 400 && location && hop < MAX_REDIRECTS) {
      at = new URL(location, at).toString();
      continue;
    }
    if (reply.status === 404 && missing) throw new ModelshipError('io', `${missing}: GET ${shownUrl(at)} answered HTTP 404`);
    if (reply.status < 200 || reply.status >= 300) throw new ModelshipError('io', `cannot fetch ${what}: GET ${shownUrl(at)} answered HTTP ${reply.status}`);
    const doc = parseJsonBody(reply.body, reply.headers['content-encoding'], shownUrl(at), what);
    if (!isJsonObject(doc)) throw new ModelshipError('io', `${what} from ${shownUrl(at)} is not a JSON object`);
    return doc;
  }
}

function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJsonBody(body: Buffer, encoding: string | undefined, url: string, what: string): unknown {
  let text = body;
  if (/\bgzip\b/i.test(encoding ?? '') || (body[0] === 0x1f && body[1] === 0x8b)) {
    try {
      text = zlib.gunzipSync(body);
    } catch (e) {
      throw new ModelshipError('io', `${what} from ${url} is not valid gzip: ${(e as Error).message}`);
    }
  }
  try {
    return JSON.parse(text.toString('utf8'));
  } catch {
    throw new ModelshipError('io', `${what} from ${url} is not JSON`);
  }
}

// ---- extraction and caching ------------------------------------------------------------------------------------

/** Extract the two libraries from the verified package into a staging directory, record provenance, and cache it. */
async function install(pkg: VerifiedPackage, version: string, log: ProviderLog): Promise<GpuProviders> {
  const temp = process.env.RUNNER_TEMP as string;
  fs.mkdirSync(temp, { recursive: true });
  const staging = fs.mkdtempSync(path.join(temp, 'modelship-ort-gpu-'));
  try {
    const libs = extractLibs(pkg.file, pkg.source, staging);
    const provenance: Record<string, string> = {
      package: PROVIDER_PACKAGE_ID,
      version,
      source: pkg.source,
      sha256: pkg.sha256,
      sha512: pkg.sha512,
      verifiedAgainst: pkg.verifiedAgainst,
      time: new Date().toISOString(),
    };
    for (const [lib, digest] of Object.entries(libs)) provenance[`${lib}.sha256`] = digest;
    writeFileAtomic(path.join(staging, PROVENANCE_FILE), JSON.stringify(provenance, null, 2) + '\n');
    const dir = await cacheDir(staging, TOOL_NAME, version, TOOL_ARCH);
    log.info(
      `GPU provider: ${PROVIDER_PACKAGE_ID} ${version} verified against ${pkg.verifiedAgainst} (sha256 ${pkg.sha256}); ${PROVIDER_LIBS.join(', ')} cached in ${dir}`,
    );
    return { dir, files: PROVIDER_LIBS.map((l) => path.join(dir, l)), provenance, cached: false };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Write the two provider libraries of the .nupkg `file` into `out`; returns their sha256s. A truncated or corrupt
 * archive, or one without the libraries, fails naming `where` (the URL or path it came from).
 */
function extractLibs(file: string, where: string, out: string): Record<string, string> {
  const corrupt = (e: unknown) =>
    new ModelshipError('io', `the ${PROVIDER_PACKAGE_ID} package ${where} is not a readable zip archive (truncated or corrupt): ${(e as Error).message}`);
  let zip: AdmZip;
  try {
    zip = new AdmZip(file);
  } catch (e) {
    throw corrupt(e);
  }
  const digests: Record<string, string> = {};
  for (const lib of PROVIDER_LIBS) {
    const entry = zip.getEntry(NUPKG_NATIVE_DIR + lib);
    if (!entry) throw new ModelshipError('io', `the ${PROVIDER_PACKAGE_ID} package ${where} has no ${NUPKG_NATIVE_DIR}${lib}`);
    let data: Buffer;
    try {
      data = entryData(entry);
    } catch (e) {
      throw corrupt(e);
    }
    fs.writeFileSync(path.join(out, lib), data, { mode: 0o755 });
    digests[lib] = crypto.createHash('sha256').update(data).digest('hex');
  }
  return digests;
}

/**
 * An entry's bytes, checked against its size and CRC-32. adm-zip parses the archive; a stored or deflated entry
 * is inflated and checked with zlib (adm-zip's CRC-32 is JavaScript: seconds on the 272 MB CUDA provider).
 */
function entryData(entry: AdmZip.IZipEntry): Buffer {
  const { method, size, crc } = entry.header;
  if (entry.header.encrypted || (method !== 0 && method !== 8)) return entry.getData();
  const raw = entry.getCompressedData();
  const data = method === 8 ? zlib.inflateRawSync(raw) : raw;
  if (data.length !== size) throw new Error(`${entry.entryName} inflates to ${data.length} bytes, not ${size}`);
  if (zlib.crc32(data) !== crc) throw new Error(`${entry.entryName} fails its CRC-32 check`);
  return data;
}

function warn(log: ProviderLog, line: string): void {
  if (log.warn) log.warn(line);
  else if (log.warning) log.warning(line);
  else log.info(`warning: ${line}`);
}
