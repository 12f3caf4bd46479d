import * as fs from 'fs';
import * as path from 'path';
import { spawn, execFileSync } from 'child_process';
import { runCli } from './helpers/cli';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';
import { LAB, requireLab, docker } from './helpers/lab';
import { labDescribe } from './helpers/needs';
import { SERVING_UID } from '../src/image';
import { TRITON_UID } from '../src/protocol/runtime';

// Issue 20, point 8: a hardened self-hosted runner's `umask 077` must not give an image whose non-root user cannot
// read its files. The image stage runs (from source, through tsx) in a shell with umask 077, shipping a copy of the
// bundle made under that umask (as a checkout of the action there is: files 0600, directories 0700), with a temporary
// directory of its own (so its build context is new); the image then runs as its user and reads every file, and
// smoke serves from it. Lab: the Docker engine and registry (lab/up.sh docker). The build context's modes alone:
// test/image-umask.test.ts.
jest.setTimeout(300_000);

const LENET = path.join(FIXTURES, 'lenet');
const work = tmpDir('modelship-image-umask-');
const onnx = path.join(work, 'lenet.onnx');
const TSX = path.join(REPO, 'node_modules/.bin/tsx');

/** `modelship <args>` from source in `bash -c 'umask 077; …'`, with TMPDIR and the bundle given. */
function stageUnderUmask077(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', 'umask 077 && exec "$@"', 'bash', TSX, path.join(REPO, 'src/index.ts'), ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every directory and file under `root`, with its mode (octal, permission bits only), relative to `root`. */
function modesUnder(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    out[path.relative(root, p) || '.'] = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(root);
  return out;
}

/**
 * Run `image` as its own user (the image's USER) with its own Node.js or the base's shell and read every file under
 * `dirs`; returns `mode path` lines (`uid` of the process first) and any read failure.
 */
function readAllInImage(image: string, dirs: string[], shell: boolean): { uid: string; entries: Map<string, string>; errors: string[] } {
  const out = shell
    ? docker([
        'run',
        '--rm',
        '--network',
        'none',
        '--entrypoint',
        '/bin/sh',
        image,
        '-c',
        `id -u; for d in ${dirs.join(' ')}; do find "$d" -exec stat -c 'M %a %n' {} \\; ; find "$d" -type f -exec sh -c 'cat "$1" > /dev/null || echo "E $1"' sh {} \\; ; done 2>&1; true`,
      ])
    : docker([
        'run',
        '--rm',
        '--network',
        'none',
        '--entrypoint',
        '/opt/modelship/node/bin/node',
        image,
        '-e',
        `const fs=require('fs'),path=require('path');console.log(process.getuid());
         const walk=(p)=>{let st;try{st=fs.statSync(p)}catch(e){console.log('E '+p+' '+e.code);return}
           console.log('M '+(st.mode&0o7777).toString(8)+' '+p);
           if(st.isDirectory()){let l;try{l=fs.readdirSync(p)}catch(e){console.log('E '+p+' '+e.code);return}for(const n of l)walk(path.join(p,n))}
           else{try{fs.readFileSync(p)}catch(e){console.log('E '+p+' '+e.code)}}};
         for(const d of ${JSON.stringify(dirs)})walk(d);`,
      ]);
  const lines = out.trim().split('\n');
  const entries = new Map<string, string>();
  const errors: string[] = [];
  for (const l of lines.slice(1)) {
    if (l.startsWith('M ')) {
      const [, mode, p] = /^M (\d+) (.*)$/.exec(l)!;
      entries.set(p, mode);
    } else if (l.trim()) errors.push(l);
  }
  return { uid: lines[0], entries, errors };
}

beforeAll(async () => {
  requireLab();
  const c = await runCli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', path.join(LENET, 'weights.caffemodel'), '--out', onnx]);
  expect(c.code).toBe(0);
});

labDescribe(['docker', 'registry', 'node24'])('the image stage under umask 077 (lab)', () => {
  const tmp = path.join(work, 'tmp');
  const bundle = path.join(work, 'dist-077');

  beforeAll(() => {
    fs.mkdirSync(tmp);
    // the action checked out under umask 077: its bundle is readable by the runner's user alone
    execFileSync('bash', ['-c', 'umask 077 && cp -r "$0" "$1"', path.join(REPO, 'dist'), bundle]);
    expect(fs.statSync(path.join(bundle, 'index.js')).mode & 0o077).toBe(0);
  });

  test('runtime modelship: every file of the image is readable by its user (10001), and smoke passes', async () => {
    const repo = `${LAB.registry}/modelship-test/lenet-umask-${process.pid}`;
    const r = await stageUnderUmask077(
      [
        'image',
        '--image',
        repo,
        '--model',
        onnx,
        '--model-name',
        'lenet',
        '--base-image',
        LAB.baseImage,
        '--revision',
        'd'.repeat(40),
        '--compose-file',
        path.join(work, 'compose.yml'),
        '--json',
      ],
      { TMPDIR: tmp, MODELSHIP_DIST: bundle },
    );
    if (r.code !== 0) throw new Error(`image stage failed (${r.code}):\n${r.stderr.slice(-3000)}`);
    const image = JSON.parse(r.stdout).image as string;

    // the build context the stage kept (written under umask 077): what COPY takes has the image's modes
    const [ctx] = fs.readdirSync(path.join(tmp, 'modelship-build')).map((n) => path.join(tmp, 'modelship-build', n));
    for (const d of ['node', 'dist', 'model']) {
      for (const [p, mode] of Object.entries(modesUnder(path.join(ctx, d)))) {
        const isDir = fs.statSync(path.join(ctx, d, p)).isDirectory();
        expect(`${d}/${p} ${mode}`).toMatch(isDir ? / 755$/ : / (644|755)$/);
      }
    }
    expect((fs.statSync(path.join(ctx, 'node/bin/node')).mode & 0o777).toString(8)).toBe('755');
    expect((fs.statSync(path.join(ctx, 'model/lenet.onnx')).mode & 0o777).toString(8)).toBe('644');

    // in the image, as its user: everything readable (EACCES was the failure on /opt/modelship/dist/index.js)
    const seen = readAllInImage(image, ['/opt/modelship', '/models'], false);
    expect(seen.uid).toBe(String(SERVING_UID));
    expect(seen.errors).toEqual([]);
    expect(seen.entries.get('/opt/modelship/dist/index.js')).toBe(fs.statSync(path.join(REPO, 'dist/index.js')).mode & 0o100 ? '755' : '644');
    expect(seen.entries.get('/opt/modelship/node/bin/node')).toBe('755');
    expect(seen.entries.get('/models/lenet.onnx')).toBe('644');
    for (const [p, mode] of seen.entries) expect(`${p} ${mode}`).toMatch(/ (755|644)$/);

    const s = await runCli(['smoke', '--image', image, '--model-name', 'lenet', '--reference', LENET, '--requests', '5', '--json']);
    if (s.code !== 0) throw new Error(`smoke failed:\n${s.stderr.slice(-3000)}`);
  });

  test("runtime triton: the model repository in the image is readable by Triton's user", async () => {
    const repo = `${LAB.registry}/modelship-test/lenet-umask-triton-${process.pid}`;
    // any image serves as the base for the build and the read: the Triton server itself is image-triton.lab.test.ts's
    const base = `${LAB.registry}/${LAB.baseImage}`;
    const r = await stageUnderUmask077(
      [
        'image',
        '--image',
        repo,
        '--model',
        onnx,
        '--model-name',
        'lenet',
        '--runtime',
        'triton',
        '--triton-image',
        base,
        '--revision',
        'e'.repeat(40),
        '--compose-file',
        path.join(work, 'compose-triton.yml'),
        '--json',
      ],
      { TMPDIR: tmp, MODELSHIP_DIST: bundle },
    );
    if (r.code !== 0) throw new Error(`image stage failed (${r.code}):\n${r.stderr.slice(-3000)}`);
    const image = JSON.parse(r.stdout).image as string;
    const seen = readAllInImage(image, ['/models'], true);
    expect(seen.uid).toBe(String(TRITON_UID));
    expect(seen.errors).toEqual([]);
    expect(Object.fromEntries(seen.entries)).toEqual({
      '/models': '755',
      '/models/lenet': '755',
      '/models/lenet/config.pbtxt': '644',
      '/models/lenet/1': '755',
      '/models/lenet/1/model.onnx': '644',
    });
  });
});
