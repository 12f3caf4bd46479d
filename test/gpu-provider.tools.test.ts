import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import * as zlib from 'zlib';
import * as crypto from 'crypto';
import { AddressInfo } from 'net';
import AdmZip from 'adm-zip';
import { GPU_CACHE, makeNupkg, providerLibs } from './helpers/gpu';
import { tmpDir } from './helpers/caffe';
import { labDescribe } from './helpers/needs';
import { isModelshipError } from '../src/util/errors';
import { hashFile, loadToolCache } from '../src/util/toolcache';
import {
  NUPKG_NATIVE_DIR,
  ORT_VERSION,
  PROVENANCE_FILE,
  PROVIDER_LIBS,
  PROVIDER_PACKAGE_ID,
  ProviderSource,
  resolveGpuProviders,
  TOOL_NAME,
} from '../src/image/gpu-provider';

// @actions/tool-cache (ESM-only) is the real one, loaded through test/helpers/tool-cache-bridge.js (jest.config.js).

// The local HTTP server below stands in for nuget.org (and for a mirror), which this machine cannot reach; it speaks
// the NuGet v3 protocol the code uses: service index, registration leaf (gzip-encoded, as nuget.org's
// registration5-gz-semver2 hive is), catalog entry with the package's SHA-512, flat-container .nupkg. The package
// is a real Microsoft.ML.OnnxRuntime.Gpu.Linux-layout .nupkg holding the provider libraries of PyPI's
// onnxruntime-gpu wheel of the same version, which stand in for the NuGet package's (test/helpers/gpu.ts).

const ID = PROVIDER_PACKAGE_ID.toLowerCase();
const V = ORT_VERSION;

/** The real package, built once (the CUDA provider is 272 MB) and kept in .tmp/gpu/ across runs. */
function realNupkg(): string {
  const out = path.join(GPU_CACHE, 'nupkg', `${PROVIDER_PACKAGE_ID}.${V}.nupkg`);
  if (!fs.existsSync(out)) {
    const tmp = `${out}.${process.pid}.tmp`;
    makeNupkg(tmp, V);
    fs.renameSync(tmp, out);
  }
  return out;
}

/** A tiny package in the same layout, for the paths that fail (and for cache-replacement checks). */
function smallNupkg(file: string, opts: { omit?: string; marker?: string } = {}): string {
  const zip = new AdmZip();
  zip.addFile(`${PROVIDER_PACKAGE_ID}.nuspec`, Buffer.from(`<package><metadata><id>${PROVIDER_PACKAGE_ID}</id><version>${V}</version></metadata></package>`));
  for (const lib of PROVIDER_LIBS) {
    if (lib !== opts.omit) zip.addFile(NUPKG_NATIVE_DIR + lib, Buffer.from(`${opts.marker ?? 'small'} ${lib}\n`.repeat(100)));
  }
  fs.writeFileSync(file, zip.toBuffer());
  return file;
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
/** The real package's digests, computed once */
let realDigests: Promise<{ sha256: string; sha512: string }> | undefined;
const realNupkgDigests = () => (realDigests ??= hashFile(realNupkg()));
/** Byte-identical files (cheaper than hashing 272 MB twice) */
const sameBytes = (a: string, b: string) => fs.statSync(a).size === fs.statSync(b).size && fs.readFileSync(a).equals(fs.readFileSync(b));
const sha512b64 = (b: Buffer) => crypto.createHash('sha512').update(b).digest('base64');

interface Route {
  status?: number;
  body?: Buffer;
  /** served from disk (the real package is large) */
  file?: string;
  gzip?: boolean;
}

interface Server {
  base: string;
  routes: Map<string, Route>;
  /** every path asked for, in order */
  requests: string[];
  close(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const routes = new Map<string, Route>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(url);
    const r = routes.get(url);
    if (!r || r.status) {
      res.writeHead(r?.status ?? 404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    } else if (r.file) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': fs.statSync(r.file).size });
      fs.createReadStream(r.file).pipe(res);
    } else {
      const body = r.gzip ? zlib.gzipSync(r.body!) : r.body!;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, ...(r.gzip ? { 'content-encoding': 'gzip' } : {}) });
      res.end(body);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, routes, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const json = (o: unknown) => Buffer.from(JSON.stringify(o));

/** The NuGet v3 routes for the package `file`; returns the URLs of the documents it serves. */
function serveFeed(s: Server, file: string, opts: { packageHash?: string; packageContent?: boolean } = {}) {
  const bytes = fs.readFileSync(file);
  const p = {
    index: '/v3/index.json',
    leaf: `/v3/registration5-gz-semver2/${ID}/${V}.json`,
    catalog: `/v3/catalog0/data/2026.05.01.00.00.00/${ID}.${V}.json`,
    nupkg: `/v3-flatcontainer/${ID}/${V}/${ID}.${V}.nupkg`,
  };
  s.routes.set(p.index, {
    body: json({
      version: '3.0.0',
      resources: [
        // older hives first: the 3.6.0 one must be preferred (the others 404 here)
        { '@id': `${s.base}/v3/registration3/`, '@type': 'RegistrationsBaseUrl' },
        { '@id': `${s.base}/v3/registration5-gz-semver1/`, '@type': 'RegistrationsBaseUrl/3.4.0' },
        { '@id': `${s.base}/v3/registration5-gz-semver2/`, '@type': 'RegistrationsBaseUrl/3.6.0' },
        { '@id': `${s.base}/v3-flatcontainer/`, '@type': 'PackageBaseAddress/3.0.0' },
        { '@id': `${s.base}/query`, '@type': 'SearchQueryService' },
      ],
    }),
  });
  s.routes.set(p.leaf, {
    gzip: true,
    body: json({
      '@id': `${s.base}${p.leaf}`,
      '@type': ['Package', 'http://schema.nuget.org/catalog#Permalink'],
      catalogEntry: `${s.base}${p.catalog}`,
      listed: true,
      ...(opts.packageContent === false ? {} : { packageContent: `${s.base}${p.nupkg}` }),
      published: '2026-05-01T00:00:00+00:00',
      registration: `${s.base}/v3/registration5-gz-semver2/${ID}/index.json`,
    }),
  });
  s.routes.set(p.catalog, {
    body: json({
      '@id': `${s.base}${p.catalog}`,
      '@type': ['PackageDetails', 'catalog:Permalink'],
      id: PROVIDER_PACKAGE_ID,
      version: V,
      packageHash: opts.packageHash ?? sha512b64(bytes),
      packageHashAlgorithm: 'SHA512',
      packageSize: bytes.length,
    }),
  });
  s.routes.set(p.nupkg, { file });
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, `${s.base}${v}`])) as typeof p;
}

/** Run `fn`, expecting a ModelshipError; returns it. */
async function failure(fn: () => Promise<unknown>) {
  try {
    await fn();
  } catch (e) {
    if (!isModelshipError(e)) throw e;
    return e;
  }
  throw new Error('expected a ModelshipError');
}

const source = (o: Partial<ProviderSource>): ProviderSource => ({ version: V, package: '', sha256: '', nugetSource: '', ...o });

labDescribe(['gpu-wheels'])('GPU provider libraries (ONNX Runtime CUDA provider for gpu: true)', () => {
  let server: Server;
  let logs: string[];
  let work: string;
  const log = { info: (l: string) => logs.push(l), warn: (l: string) => logs.push(`warning: ${l}`) };
  const saved = { RUNNER_TEMP: process.env.RUNNER_TEMP, RUNNER_TOOL_CACHE: process.env.RUNNER_TOOL_CACHE };
  const cachedDir = async () => (await loadToolCache()).find(TOOL_NAME, V, 'x64');
  /** RUNNER_TEMP holds nothing once a call returns or throws: downloads and staging are removed */
  const tempIsEmpty = () => expect(fs.readdirSync(process.env.RUNNER_TEMP!)).toEqual([]);

  beforeAll(async () => {
    realNupkg();
    server = await startServer();
  });
  afterAll(async () => {
    await server.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  beforeEach(() => {
    // each test its own tool cache and temp directory
    work = tmpDir('modelship-gpu-provider-');
    process.env.RUNNER_TOOL_CACHE = path.join(work, 'tool-cache');
    process.env.RUNNER_TEMP = path.join(work, 'temp');
    fs.mkdirSync(process.env.RUNNER_TEMP);
    server.routes.clear();
    server.requests.length = 0;
    logs = [];
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  test('from the NuGet feed: verified against the catalog packageHash, cached, and found offline the next time', async () => {
    const pkg = realNupkg();
    const urls = serveFeed(server, pkg);
    const got = await resolveGpuProviders(source({ nugetSource: urls.index }), log);

    expect(got.cached).toBe(false);
    expect(got.dir).toBe(await cachedDir());
    expect(got.dir.startsWith(process.env.RUNNER_TOOL_CACHE!)).toBe(true);
    expect(got.files).toEqual(PROVIDER_LIBS.map((l) => path.join(got.dir, l)));
    const libs = providerLibs();
    expect(sameBytes(got.files[0], libs.cuda)).toBe(true);
    expect(sameBytes(got.files[1], libs.shared)).toBe(true);
    // the registration leaf came gzip-encoded; the older hives were not asked
    expect(server.requests).toEqual([urls.index, urls.leaf, urls.catalog, urls.nupkg].map((u) => new URL(u).pathname));

    const digests = await realNupkgDigests();
    expect(got.provenance).toMatchObject({
      source: urls.nupkg,
      sha256: digests.sha256,
      sha512: digests.sha512,
      verifiedAgainst: 'nuget packageHash',
      version: V,
    });
    expect(JSON.parse(fs.readFileSync(path.join(got.dir, PROVENANCE_FILE), 'utf8'))).toEqual(got.provenance);
    expect(logs.join('\n')).toContain(`downloading ${PROVIDER_PACKAGE_ID} ${V} from ${urls.nupkg}`);
    expect(logs.join('\n')).toContain('verified against nuget packageHash');
    tempIsEmpty();

    // a second run: no request at all
    server.requests.length = 0;
    const again = await resolveGpuProviders(source({ nugetSource: urls.index }), log);
    expect(server.requests).toEqual([]);
    expect(again).toMatchObject({ dir: got.dir, files: got.files, provenance: got.provenance, cached: true });
    // the recorded sha256 given as a pin: still a hit; another sha256: fetched again from the package given
    await resolveGpuProviders(source({ package: `${server.base}/mirror/x.nupkg`, sha256: digests.sha256 }), log);
    expect(server.requests).toEqual([]);
    const small = smallNupkg(path.join(work, 'small.nupkg'), { marker: 'replacement' });
    server.routes.set('/mirror/small.nupkg', { file: small });
    const replaced = await resolveGpuProviders(source({ package: `${server.base}/mirror/small.nupkg`, sha256: sha256(fs.readFileSync(small)) }), log);
    expect(replaced).toMatchObject({
      dir: got.dir,
      cached: false,
      provenance: { verifiedAgainst: 'provider-package-sha256', source: `${server.base}/mirror/small.nupkg` },
    });
    expect(fs.readFileSync(replaced.files[0], 'utf8')).toMatch(/^replacement libonnxruntime_providers_cuda\.so/);
  });

  test('a package that does not match the catalog packageHash fails naming its URL, and nothing is cached', async () => {
    const pkg = smallNupkg(path.join(work, 'p.nupkg'));
    const wrong = sha512b64(Buffer.from('another package'));
    const urls = serveFeed(server, pkg, { packageHash: wrong });
    const e = await failure(() => resolveGpuProviders(source({ nugetSource: urls.index }), log));
    expect(e.code).toBe('io');
    expect(e.message).toContain(urls.nupkg);
    expect(e.message).toContain(`expected sha512 ${wrong}, got ${sha512b64(fs.readFileSync(pkg))}`);
    expect(await cachedDir()).toBe('');
    tempIsEmpty();
  });

  test('HTTP errors name the URL: the .nupkg 404, the version not on the feed, a broken feed', async () => {
    const pkg = smallNupkg(path.join(work, 'p.nupkg'));
    let urls = serveFeed(server, pkg);
    server.routes.set(new URL(urls.nupkg).pathname, { status: 404 });
    let e = await failure(() => resolveGpuProviders(source({ nugetSource: urls.index }), log));
    expect(e.code).toBe('io');
    expect(e.message).toBe(`cannot download the ${PROVIDER_PACKAGE_ID} package from ${urls.nupkg}: HTTP 404`);
    expect(await cachedDir()).toBe('');
    tempIsEmpty();

    urls = serveFeed(server, pkg);
    server.routes.delete(new URL(urls.leaf).pathname);
    e = await failure(() => resolveGpuProviders(source({ nugetSource: urls.index }), log));
    expect(e.message).toBe(`${PROVIDER_PACKAGE_ID} ${V} is not on the feed ${urls.index}: GET ${urls.leaf} answered HTTP 404`);

    urls = serveFeed(server, pkg);
    server.routes.set(new URL(urls.catalog).pathname, { status: 500 });
    e = await failure(() => resolveGpuProviders(source({ nugetSource: urls.index }), log));
    expect(e.message).toContain(`GET ${urls.catalog} answered HTTP 500`);

    // a mirror's credentials in its URL stay out of the message
    const port = new URL(server.base).port;
    e = await failure(() =>
      resolveGpuProviders(source({ package: `http://ci:s3cret@127.0.0.1:${port}/private/p.nupkg`, sha256: sha256(fs.readFileSync(pkg)) }), log),
    );
    expect(e.message).toBe(`cannot download the ${PROVIDER_PACKAGE_ID} package from http://127.0.0.1:${port}/private/p.nupkg: HTTP 404`);

    e = await failure(() => resolveGpuProviders(source({ nugetSource: `${server.base}/nothing/index.json` }), log));
    expect(e.message).toContain(`GET ${server.base}/nothing/index.json answered HTTP 404`);
    expect(await cachedDir()).toBe('');
  });

  test('a registration without packageContent: the package comes from PackageBaseAddress', async () => {
    const pkg = smallNupkg(path.join(work, 'p.nupkg'));
    const urls = serveFeed(server, pkg, { packageContent: false });
    const got = await resolveGpuProviders(source({ nugetSource: urls.index }), log);
    expect(got.provenance.source).toBe(urls.nupkg);
    expect(server.requests.at(-1)).toBe(new URL(urls.nupkg).pathname);
  });

  test('provider-package URL (a mirror): checked against provider-package-sha256', async () => {
    const pkg = realNupkg();
    const url = `${server.base}/mirror/${ID}.${V}.nupkg`;
    server.routes.set(`/mirror/${ID}.${V}.nupkg`, { file: pkg });
    const digests = await realNupkgDigests();

    // wrong sha256: expected and actual, naming the URL
    const small = smallNupkg(path.join(work, 'small.nupkg'));
    server.routes.set('/mirror/small.nupkg', { file: small });
    const wrong = 'ab'.repeat(32);
    let e = await failure(() => resolveGpuProviders(source({ package: `${server.base}/mirror/small.nupkg`, sha256: wrong }), log));
    expect(e.code).toBe('io');
    expect(e.message).toBe(
      `checksum mismatch for the ${PROVIDER_PACKAGE_ID} package ${server.base}/mirror/small.nupkg: expected sha256 ${wrong}, got ${sha256(fs.readFileSync(small))}`,
    );
    expect(await cachedDir()).toBe('');
    tempIsEmpty();

    // a truncated archive (whose own sha256 is given): a corrupt zip, naming the URL
    const cut = path.join(work, 'cut.nupkg');
    const bytes = fs.readFileSync(small);
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    server.routes.set('/mirror/cut.nupkg', { file: cut });
    e = await failure(() => resolveGpuProviders(source({ package: `${server.base}/mirror/cut.nupkg`, sha256: sha256(fs.readFileSync(cut)) }), log));
    expect(e.code).toBe('io');
    expect(e.message).toContain(`package ${server.base}/mirror/cut.nupkg is not a readable zip archive (truncated or corrupt)`);
    expect(await cachedDir()).toBe('');
    tempIsEmpty();

    // the right sha256: the wheel's libraries, byte for byte
    server.requests.length = 0;
    const got = await resolveGpuProviders(source({ package: url, sha256: digests.sha256.toUpperCase() }), log);
    expect(server.requests).toEqual([new URL(url).pathname]);
    expect(got).toMatchObject({
      dir: await cachedDir(),
      cached: false,
      provenance: { source: url, sha256: digests.sha256, verifiedAgainst: 'provider-package-sha256' },
    });
    expect(sameBytes(got.files[0], providerLibs().cuda)).toBe(true);
    expect(logs.join('\n')).toContain('verified against provider-package-sha256');
    tempIsEmpty();
  });

  test('a package without one of the libraries, or with a damaged entry, fails naming the entry or the package', async () => {
    const lacking = smallNupkg(path.join(work, 'lacking.nupkg'), { omit: 'libonnxruntime_providers_shared.so' });
    let e = await failure(() => resolveGpuProviders(source({ package: lacking, sha256: sha256(fs.readFileSync(lacking)) }), log));
    expect(e.message).toBe(`the ${PROVIDER_PACKAGE_ID} package ${lacking} has no runtimes/linux-x64/native/libonnxruntime_providers_shared.so`);

    // one flipped byte inside the compressed CUDA library: the archive opens, the entry does not inflate or check
    const damaged = path.join(work, 'damaged.nupkg');
    const bytes = Buffer.from(fs.readFileSync(smallNupkg(path.join(work, 'ok.nupkg'))));
    const at = bytes.indexOf(Buffer.from(`${NUPKG_NATIVE_DIR}libonnxruntime_providers_cuda.so`)) + 80;
    bytes[at] ^= 0xff;
    fs.writeFileSync(damaged, bytes);
    e = await failure(() => resolveGpuProviders(source({ package: damaged, sha256: sha256(bytes) }), log));
    expect(e.message).toContain(`package ${damaged} is not a readable zip archive (truncated or corrupt)`);
    expect(await cachedDir()).toBe('');
    tempIsEmpty();
  });

  test('provider-package path (air-gapped): read directly and checked; bad inputs fail before any download', async () => {
    const pkg = realNupkg();
    const digests = await realNupkgDigests();
    const got = await resolveGpuProviders(source({ package: pkg, sha256: digests.sha256 }), log);
    expect(got).toMatchObject({
      cached: false,
      provenance: { source: pkg, sha256: digests.sha256, sha512: digests.sha512, verifiedAgainst: 'provider-package-sha256' },
    });
    expect(sameBytes(got.files[1], providerLibs().shared)).toBe(true);
    expect(fs.existsSync(pkg)).toBe(true); // a local package is left where it is

    const missing = path.join(work, 'nope.nupkg');
    // (the cache holds the package of sha256 digests.sha256: asked for another one, the file must be read)
    let e = await failure(() => resolveGpuProviders(source({ package: missing, sha256: 'cd'.repeat(32) }), log));
    expect(e).toMatchObject({ code: 'input', location: { file: missing, field: 'provider-package' } });
    expect(e.message).toBe(`${missing}: cannot read input "provider-package": no such file`);

    e = await failure(() => resolveGpuProviders(source({ package: pkg }), log));
    expect(e).toMatchObject({ code: 'input', location: { field: 'provider-package-sha256' } });
    expect(e.message).toContain('input "provider-package" needs input "provider-package-sha256"');

    e = await failure(() => resolveGpuProviders(source({ package: pkg, sha256: 'deadbeef' }), log));
    expect(e).toMatchObject({ code: 'input', location: { field: 'provider-package-sha256' } });

    e = await failure(() => resolveGpuProviders(source({ package: 'ftp://mirror/x.nupkg', sha256: digests.sha256 }), log));
    expect(e).toMatchObject({ code: 'input', location: { field: 'provider-package' } });

    e = await failure(() => resolveGpuProviders(source({ nugetSource: 'nuget.org' }), log));
    expect(e).toMatchObject({ code: 'input', location: { field: 'nuget-source' } });
    expect(server.requests).toEqual([]);
  });
});
