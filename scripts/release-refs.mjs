#!/usr/bin/env node
// One version end to end: pin every internal reference of modelship's own workflows to one ref.
//
// Inside the reusable workflows (.github/workflows/) every step runs the action as `uses: org/modelship@<ref>`. A
// caller who pins `org/modelship/.github/workflows/deploy.yml@v1.2.3` (or a SHA) must run the action at that same
// version, so the release workflow (.github/workflows/release.yml) runs this script with the release's tag and tags a
// commit on which every internal reference says `@<tag>`. Main keeps one ref everywhere (`@v1`), so there is one
// thing to rewrite; test/release-refs.test.ts checks both.
//
// Usage: node scripts/release-refs.mjs <ref> [--check] [--root DIR]
//   <ref>       the release's ref: a tag name (v1.2.3, as GITHUB_REF_NAME gives it) or a 40-hex commit SHA
//   --check     rewrite nothing; exit 1 listing every reference not at @<ref> as file:line
//   --root DIR  the repository to work on (default: the one this script is in)
// Exit status: 0 done (or, with --check, all at @<ref>); 1 references not at @<ref> (--check) or a rewrite that
// would change more than the refs; 2 usage (a missing or malformed ref, an unknown option).
//
// What is rewritten: in .github/workflows/*.yml|yaml and action.yml|yaml (a composite action's own steps, if it ever
// has any), every `org/modelship@<ref>` and `org/modelship/<path>@<ref>`: steps' `uses:` (the action, or an action
// in a subdirectory), jobs' `uses:` (a reusable workflow of this repository), and the same text in comments (the
// usage examples at the top of each reusable workflow, so a file read at a tag shows the tag). Nothing else: third-
// party actions (actions/checkout@v4) keep their refs, and the caller templates in workflows/ and the README are
// not read at all (what a caller pins is the caller's choice).
//
// How: a line-based rewrite of the ref alone, so comments and formatting stay byte for byte, then a YAML-aware
// check with js-yaml of the result: each file still parses; it loads to the same document as before with the refs
// normalized; and every `uses:` GitHub reads (jobs.*.uses, jobs.*.steps[*].uses, runs.steps[*].uses) that names
// modelship is at @<ref>. A file that fails any of these is not written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';

export const SLUG = 'org/modelship';

// `org/modelship` (GitHub's owner/repo are case-insensitive) not inside a longer name (myorg/modelship,
// github.com/org/modelship), then an optional /path, then @ref. A ref is what git allows in a tag or branch name
// minus the oddities; dots only inside it, so the full stop after `org/modelship@v1.` in prose is not taken.
const REF_CHARS = '[A-Za-z0-9_+/-]';
const REF = `${REF_CHARS}+(?:\\.${REF_CHARS}+)*`;
const slugRe = SLUG.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** Every internal reference in a text: groups 1 = org/modelship[/path], 2 = the ref. */
export const internalRefRe = () => new RegExp(`(?<![\\w.\\-/])(${slugRe}(?:/[\\w.\\-/]+)?)@(${REF})`, 'gi');

/** Why `ref` cannot be a release ref, or undefined when it can. */
export function badRef(ref) {
  if (typeof ref !== 'string' || ref === '') return 'the ref is empty';
  if (/\s/.test(ref)) return `${JSON.stringify(ref)}: a ref has no whitespace`;
  if (/^refs\//.test(ref)) return `${JSON.stringify(ref)}: give the short name (GITHUB_REF_NAME, e.g. v1.2.3), not the full ref`;
  if (!new RegExp(`^${REF}$`).test(ref)) return `${JSON.stringify(ref)}: a ref is letters, digits and _ + / - . (dots and slashes only inside it)`;
  if (/^[-/]/.test(ref) || /\/$/.test(ref) || /\/\/|\/\.|\.lock$|\.lock\//.test(ref)) return `${JSON.stringify(ref)}: not a valid git ref name`;
  return undefined;
}

/** The files whose internal references a release pins, relative to root. */
export function releaseFiles(root) {
  const dir = path.join(root, '.github/workflows');
  const workflows = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => `.github/workflows/${f}`)
    : [];
  const action = ['action.yml', 'action.yaml'].filter((f) => fs.existsSync(path.join(root, f)));
  return [...workflows, ...action];
}

/** Every internal reference of a text, with its 1-based line. */
export function textRefs(text) {
  const out = [];
  text.split('\n').forEach((l, i) => {
    for (const m of l.matchAll(internalRefRe())) out.push({ line: i + 1, target: m[1], ref: m[2], text: m[0], comment: isComment(l, m.index) });
  });
  return out;
}

// a `#` that starts a YAML comment: at the line's start or after whitespace (close enough for these files; the
// YAML check below is what decides whether a rewrite is right)
const isComment = (line, at) => /(^|\s)#/.test(line.slice(0, at));

/** The text with every internal reference at @ref; nothing else changes. */
export const rewriteText = (text, ref) => text.replace(internalRefRe(), (_m, target) => `${target}@${ref}`);

/** The `uses:` values GitHub reads in a workflow or action document, with where they are. */
export function usesOf(doc) {
  const out = [];
  const steps = (list, where) =>
    (Array.isArray(list) ? list : []).forEach((s, i) => {
      if (s && typeof s.uses === 'string') out.push({ where: `${where}[${i}].uses`, uses: s.uses });
    });
  if (doc && typeof doc === 'object') {
    for (const [name, job] of Object.entries(doc.jobs ?? {})) {
      if (!job || typeof job !== 'object') continue;
      if (typeof job.uses === 'string') out.push({ where: `jobs.${name}.uses`, uses: job.uses });
      steps(job.steps, `jobs.${name}.steps`);
    }
    steps(doc.runs?.steps, 'runs.steps');
  }
  return out;
}

const internalUse = (uses) => new RegExp(`^${slugRe}(?:/[\\w.\\-/]+)?@(.*)$`, 'i').exec(uses.trim());

/** A loaded document with every internal reference in its strings (keys and values) at @ref. */
export function normalized(value, ref) {
  if (typeof value === 'string') return rewriteText(value, ref);
  if (Array.isArray(value)) return value.map((v) => normalized(v, ref));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [rewriteText(k, ref), normalized(v, ref)]));
  return value;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * What is wrong with `after` as the release of `before` at `ref`: it must parse, load to what `before` loads to with
 * the refs normalized, and have every internal `uses:` at @ref.
 */
export function verify(file, before, after, ref) {
  const problems = [];
  let a;
  let b;
  try {
    b = load(before);
  } catch (e) {
    return [`${file}: does not parse as YAML: ${e.message.split('\n')[0]}`];
  }
  try {
    a = load(after);
  } catch (e) {
    return [`${file}: does not parse as YAML after the rewrite: ${e.message.split('\n')[0]}`];
  }
  if (!same(normalized(b, ref), a)) problems.push(`${file}: the rewrite changed more than the refs (or missed one the YAML has)`);
  for (const u of usesOf(a)) {
    const m = internalUse(u.uses);
    if (m && m[1] !== ref) problems.push(`${file}: ${u.where}: ${u.uses} is not at @${ref}`);
  }
  return problems;
}

/** The internal references of the files that are not at @ref, as "file:line: text" (and YAML-only findings). */
export function offenders(root, ref) {
  const out = [];
  for (const file of releaseFiles(root)) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    const found = textRefs(text);
    for (const r of found) if (r.ref !== ref) out.push(`${file}:${r.line}: ${r.text}${r.comment ? ' (comment)' : ''}, expected @${ref}`);
    // the YAML's view: an internal uses: the line scan cannot see (an escaped or folded scalar) is an offender too
    let doc;
    try {
      doc = load(text);
    } catch (e) {
      out.push(`${file}: does not parse as YAML: ${e.message.split('\n')[0]}`);
      continue;
    }
    // (each reference found on a line accounts for one uses: of the same value)
    const seen = new Map();
    for (const r of found.filter((x) => !x.comment)) seen.set(`${r.target}@${r.ref}`.toLowerCase(), (seen.get(`${r.target}@${r.ref}`.toLowerCase()) ?? 0) + 1);
    for (const u of usesOf(doc)) {
      const m = internalUse(u.uses);
      if (!m || m[1] === ref) continue;
      const key = u.uses.trim().toLowerCase();
      if (seen.get(key)) seen.set(key, seen.get(key) - 1);
      else out.push(`${file}: ${u.where}: ${u.uses}, expected @${ref}`);
    }
  }
  return out;
}

/** Rewrite the files' internal references to @ref; returns { changed, refs, problems }. Writes nothing on a problem. */
export function rewrite(root, ref) {
  const planned = [];
  const problems = [];
  let refs = 0;
  for (const file of releaseFiles(root)) {
    const before = fs.readFileSync(path.join(root, file), 'utf8');
    const after = rewriteText(before, ref);
    refs += textRefs(before).length;
    problems.push(...verify(file, before, after, ref));
    if (after !== before) planned.push({ file, after });
  }
  if (problems.length === 0) for (const { file, after } of planned) fs.writeFileSync(path.join(root, file), after);
  return { changed: planned.map((p) => p.file), refs, problems };
}

function main(argv) {
  let root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  let check = false;
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') check = true;
    else if (a === '--root') {
      if (argv[i + 1] === undefined) return usage('--root needs a directory');
      root = path.resolve(argv[++i]);
    } else if (a.startsWith('--root=')) root = path.resolve(a.slice('--root='.length));
    else if (a.startsWith('--')) return usage(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 1)
    return usage(positional.length === 0 ? 'the ref is missing' : `one ref, not ${positional.length}: ${positional.map((p) => JSON.stringify(p)).join(' ')}`);
  const ref = positional[0];
  const bad = badRef(ref);
  if (bad) return usage(bad);
  if (releaseFiles(root).length === 0) return usage(`${root}: no .github/workflows/*.yml or action.yml`);

  if (check) {
    const out = offenders(root, ref);
    if (out.length) {
      console.error(`release-refs: ${out.length} internal reference(s) not at @${ref}:`);
      for (const o of out) console.error(`  ${o}`);
      return 1;
    }
    console.log(`release-refs: every internal ${SLUG} reference is at @${ref}`);
    return 0;
  }
  const { changed, refs, problems } = rewrite(root, ref);
  if (problems.length) {
    console.error('release-refs: nothing written:');
    for (const p of problems) console.error(`  ${p}`);
    return 1;
  }
  console.log(`release-refs: ${refs} internal ${SLUG} reference(s) at @${ref}; ${changed.length ? `rewrote ${changed.join(', ')}` : 'no file changed'}`);
  return 0;
}

function usage(why) {
  console.error(`release-refs: ${why}\nusage: node scripts/release-refs.mjs <ref> [--check] [--root DIR]   (ref: a tag such as v1.2.3, or a 40-hex SHA)`);
  return 2;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
