import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './helpers/caffe';
import { setContextModes } from '../src/image/dockerfile';
import { writeTritonRepository } from '../src/image/triton';

// Issue 20, point 8 (test/image-umask.lab.test.ts: the image stage under umask 077 on the lab): the build context's
// modes, whatever umask wrote it.
const work = tmpDir('modelship-image-umask-');

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

describe('build context modes', () => {
  test('directories 0755, files 0644, executables 0755, whatever they were written with; hard-linked sources keep theirs', () => {
    const dir = path.join(work, 'modes');
    const outside = path.join(work, 'outside.so');
    fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(path.join(dir, 'a/b/f.txt'), 'x', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'a/run'), '#!/bin/sh\n', { mode: 0o700 });
    fs.writeFileSync(outside, 'lib', { mode: 0o600 });
    fs.linkSync(outside, path.join(dir, 'a/lib.so'));
    fs.utimesSync(path.join(dir, 'a'), 12345, 12345);
    setContextModes(dir);
    expect(modesUnder(dir)).toEqual({ '.': '755', a: '755', 'a/b': '755', 'a/b/f.txt': '644', 'a/run': '755', 'a/lib.so': '644' });
    // the tool cache's file is not touched: the context got a copy
    expect((fs.statSync(outside).mode & 0o777).toString(8)).toBe('600');
    expect(fs.statSync(path.join(dir, 'a/lib.so')).nlink).toBe(1);
    expect(fs.readFileSync(path.join(dir, 'a/lib.so'), 'utf8')).toBe('lib');
    // modes only: the directory's mtime (part of the layer) is kept
    expect(fs.statSync(path.join(dir, 'a')).mtimeMs).toBe(12345_000);
  });

  test('the Triton model repository is written 0755/0644 under umask 077', () => {
    const old = process.umask(0o077);
    try {
      writeTritonRepository(
        path.join(work, 'triton-ctx'),
        'lenet',
        { config: 'name: "lenet"\n', file: 'model.onnx', platform: 'onnxruntime_onnx', maxBatchSize: 8 },
        Buffer.from('onnx'),
      );
    } finally {
      process.umask(old);
    }
    expect(modesUnder(path.join(work, 'triton-ctx/models'))).toEqual({
      '.': '755',
      lenet: '755',
      'lenet/config.pbtxt': '644',
      'lenet/1': '755',
      'lenet/1/model.onnx': '644',
    });
  });
});
