// After `ncc build`: ship onnxruntime-node's native binding inside dist/ so `node dist/index.js` runs with no
// node_modules. ncc leaves the binding's dynamic require alone; we point it at dist/bin/ and copy the binaries.
// Then write dist/licenses.txt from ncc's stats (`--stats-out`, kept outside dist/), which are removed once read.
// Usage: node scripts/post-build.mjs [dist] [ncc-stats.json]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeLicenses } from './licenses.mjs';

const dist = process.argv[2] ?? 'dist';
const stats = process.argv[3] ?? '.tmp/ncc-stats.json';
const bundle = path.join(dist, 'index.js');
let js = fs.readFileSync(bundle, 'utf8');
const from = 'require(`../bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`)';
const to = 'require(`./bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`)';
const n = js.split(from).length - 1;
if (n !== 1) throw new Error(`expected one onnxruntime binding require in ${bundle}, found ${n}`);
js = js.replace(from, to);
fs.writeFileSync(bundle, js);

// linux-x64 only: the platform of GitHub's hosted and GPU runners. Elsewhere, `npm install modelship` uses the package.
const src = 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64';
const dst = path.join(dist, 'bin/napi-v6/linux/x64');
fs.mkdirSync(dst, { recursive: true });
for (const f of ['onnxruntime_binding.node', 'libonnxruntime.so.1']) fs.copyFileSync(path.join(src, f), path.join(dst, f));
console.log(`post-build: ${bundle} patched, onnxruntime binaries copied to ${dst}`);

const licenses = path.join(dist, 'licenses.txt');
const count = writeLicenses(stats, licenses, [src]).length;
fs.rmSync(stats);
console.log(`post-build: ${licenses} lists the ${count} packages bundled`);
