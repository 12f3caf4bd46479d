// dist/licenses.txt: the license of every third-party package ncc bundled into dist/, read from what it actually
// bundled (its webpack stats, `ncc build --stats-out`), not from its --license option, which leaves most of them out.
// Usage: node scripts/licenses.mjs <ncc-stats.json> <out licenses.txt> [path inside another shipped package…]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Between sections; never a line of any license text (checked when written). */
export const SEPARATOR = '='.repeat(80);

/** The package directory a file lies in: the last node_modules/<name> or node_modules/@scope/<name> of its path. */
export function packageRootOf(file) {
  const m = /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/@.][^\\/]*)(?:[\\/]|$)/.exec(file);
  return m ? m[1] : null;
}

/** The files of the modules that went into the output: those in a chunk, and the modules concatenated into them.
 *  (Modules that are in no chunk, such as side-effect-free ones whose exports nobody uses, were left out.) */
export function bundledFiles(stats) {
  const files = new Set();
  const add = (m) => {
    if (typeof m.nameForCondition === 'string' && path.isAbsolute(m.nameForCondition)) files.add(m.nameForCondition);
    for (const inner of m.modules ?? []) add(inner);
  };
  for (const m of stats.modules ?? []) if ((m.chunks ?? []).length > 0) add(m);
  return [...files].sort();
}

const LICENSE_FILE = /^(?:un)?licen[cs]e(?:$|[-._])|^copying(?:$|[-._])/i;
const NOTICE_FILE = /^notice(?:$|[-._])/i;

function licenseId(pkg) {
  const one = (l) => (typeof l === 'string' ? l : l && typeof l.type === 'string' ? l.type : null);
  if (pkg.license != null) return one(pkg.license) ?? 'UNKNOWN';
  if (Array.isArray(pkg.licenses)) {
    const ids = pkg.licenses.map(one).filter(Boolean);
    if (ids.length === 1) return ids[0];
    if (ids.length > 1) return `(${ids.join(' OR ')})`;
  }
  return one(pkg.licenses) ?? 'UNKNOWN';
}

function readText(file) {
  return fs
    .readFileSync(file, 'utf8')
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n')
    .replace(/^\s*\n/, '')
    .trimEnd();
}

/** name, version, license id and license text of the package in `root` */
export function packageLicense(root) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  if (typeof pkg.name !== 'string' || typeof pkg.version !== 'string') throw new Error(`${root}/package.json: no name or version`);
  const id = licenseId(pkg);
  const entries = fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  let files = entries.filter((f) => LICENSE_FILE.test(f));
  const see = /^SEE LICEN[CS]E IN (.+)$/i.exec(id);
  if (see) {
    const f = path.normalize(see[1].trim());
    if (!f.startsWith('..') && !path.isAbsolute(f) && fs.statSync(path.join(root, f), { throwIfNoEntry: false })?.isFile()) files = [...new Set([f, ...files])];
  }
  const notices = entries.filter((f) => NOTICE_FILE.test(f));
  const parts = [];
  if (files.length === 0) parts.push(`No license file was shipped with this package; its package.json declares the license: ${id}`);
  else if (files.length === 1) parts.push(readText(path.join(root, files[0])));
  else for (const f of files) parts.push(`--- ${f} ---\n\n${readText(path.join(root, f))}`);
  for (const f of notices) parts.push(`--- ${f} ---\n\n${readText(path.join(root, f))}`);
  return { name: pkg.name, version: pkg.version, license: id, text: parts.join('\n\n') };
}

function compareVersions(a, b) {
  const pa = a.split(/[.+-]/),
    pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '',
      y = pb[i] ?? '';
    if (x === y) continue;
    if (/^\d+$/.test(x) && /^\d+$/.test(y)) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** licenses.txt for the packages in these directories: one section per name@version, sorted by name then version */
export function renderLicenses(roots) {
  const byId = new Map();
  for (const root of [...new Set(roots)].sort()) {
    const p = packageLicense(root);
    const key = `${p.name}@${p.version}`;
    if (!byId.has(key)) byId.set(key, p); // the same name@version twice (nested copies): the first path's
  }
  const pkgs = [...byId.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : compareVersions(a.version, b.version)));
  for (const p of pkgs) {
    if (p.text.split('\n').includes(SEPARATOR)) throw new Error(`${p.name}@${p.version}: its license text holds the section separator`);
  }
  return { packages: pkgs, text: pkgs.map((p) => `${p.name}@${p.version} (${p.license})\n\n${p.text}\n`).join(`\n${SEPARATOR}\n\n`) };
}

/** Writes `out` from the ncc stats in `statsFile` and the packages holding `also` (files copied into dist/ by hand). */
export function writeLicenses(statsFile, out, also = []) {
  const stats = JSON.parse(fs.readFileSync(statsFile, 'utf8'));
  const roots = new Set();
  for (const f of [...bundledFiles(stats), ...also.map((p) => path.resolve(p))]) {
    const root = packageRootOf(f);
    if (root) roots.add(root);
  }
  const { packages, text } = renderLicenses([...roots]);
  fs.writeFileSync(out, text);
  return packages;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const [statsFile, out, ...also] = process.argv.slice(2);
  if (!statsFile || !out) throw new Error('usage: node scripts/licenses.mjs <ncc-stats.json> <licenses.txt> [shipped path…]');
  console.log(`licenses: ${writeLicenses(statsFile, out, also).length} packages in ${out}`);
}
