import { DEFAULT_GPU_BASE_IMAGE, ORT_LIBRARY, ShippedLib, describeMissing, planBaseImageCheck } from '../src/image/basecheck';
import { RUNTIME_PROVIDED_LIBS, ldconfigArchFlag, parseLdconfigListing } from '../src/util/ldconfig';

// What `ldconfig -p` prints in an Ubuntu CUDA image with 32-bit compatibility libraries installed (abridged).
const LISTING = `412 libs found in cache \`/etc/ld.so.cache'
\tlibstdc++.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libstdc++.so.6
\tlibstdc++.so.6 (libc6) => /lib/i386-linux-gnu/libstdc++.so.6
\tlibm.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libm.so.6
\tlibgcc_s.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libgcc_s.so.1
\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
\tld-linux-x86-64.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda/targets/x86_64-linux/lib/libcudart.so.13
\tlibcurand.so.10 (libc6) => /usr/lib/i386-linux-gnu/libcurand.so.10
\tlibcublas.so.13 (libc6,x86-64) => /usr/local/cuda/targets/x86_64-linux/lib/libcublas.so.13
\tlibcudnn.so.9 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcudnn.so.9
`;

const X86_64 = 62;
const cudaProvider: ShippedLib = {
  file: 'libonnxruntime_providers_cuda.so',
  soname: '',
  machine: X86_64,
  needed: [
    'libcublasLt.so.13',
    'libcublas.so.13',
    'libcurand.so.10',
    'libcudart.so.13',
    'libcuda.so.1',
    'libstdc++.so.6',
    'libm.so.6',
    'libc.so.6',
    'ld-linux-x86-64.so.2',
  ],
};
const sharedProvider: ShippedLib = {
  file: 'libonnxruntime_providers_shared.so',
  soname: 'libonnxruntime_providers_shared.so',
  machine: X86_64,
  needed: ['libstdc++.so.6', 'libc.so.6'],
};

describe('the pure part', () => {
  test('parses an ldconfig -p listing: header skipped, flags split, i386 entries recognisable', () => {
    const entries = parseLdconfigListing(LISTING);
    expect(entries).toHaveLength(10);
    expect(entries[0]).toEqual({ name: 'libstdc++.so.6', flags: ['libc6', 'x86-64'], path: '/lib/x86_64-linux-gnu/libstdc++.so.6' });
    expect(entries[1]).toEqual({ name: 'libstdc++.so.6', flags: ['libc6'], path: '/lib/i386-linux-gnu/libstdc++.so.6' });
    expect(entries[2].flags).toEqual(['libc6', 'x86-64', 'OS ABI: Linux 3.2.0']);
    expect(parseLdconfigListing("0 libs found in cache `/etc/ld.so.cache'\n")).toEqual([]);
  });

  test('resolves NEEDED entries: bundled, exempt, x86-64 only, each missing name with who needs it', () => {
    const plugin: ShippedLib = {
      file: 'libmyop.so',
      soname: 'libmyop.so.2',
      machine: X86_64,
      needed: [ORT_LIBRARY, 'libonnxruntime_providers_shared.so', 'libcurand.so.10', 'libc.so.6'],
    };
    const plan = planBaseImageCheck([cudaProvider, sharedProvider, plugin], parseLdconfigListing(LISTING));
    // the x86-64 entry, never the i386 one listed after it
    expect(plan.resolved['libstdc++.so.6']).toBe('/lib/x86_64-linux-gnu/libstdc++.so.6');
    expect(plan.resolved['libcudart.so.13']).toBe('/usr/local/cuda/targets/x86_64-linux/lib/libcudart.so.13');
    expect(Object.keys(plan.resolved).sort()).toEqual([
      'ld-linux-x86-64.so.2',
      'libc.so.6',
      'libcublas.so.13',
      'libcudart.so.13',
      'libm.so.6',
      'libstdc++.so.6',
    ]);
    expect(plan.exempt).toEqual(['libcuda.so.1']);
    expect(plan.bundled).toEqual([ORT_LIBRARY, 'libonnxruntime_providers_shared.so']);
    // libcurand.so.10 exists only as an i386 library: missing for both x86-64 libraries that need it
    expect(plan.missing).toEqual([
      { name: 'libcublasLt.so.13', neededBy: ['libonnxruntime_providers_cuda.so'], otherArch: [] },
      { name: 'libcurand.so.10', neededBy: ['libonnxruntime_providers_cuda.so', 'libmyop.so'], otherArch: ['i386'] },
    ]);
    const msg = describeMissing('my/base:1', plan.missing);
    expect(msg).toBe(
      'base image "my/base:1" cannot load libonnxruntime_providers_cuda.so, libmyop.so: ' +
        'libcublasLt.so.13 (needed by libonnxruntime_providers_cuda.so); libcurand.so.10 (only for i386) (needed by libonnxruntime_providers_cuda.so, libmyop.so) ' +
        `not found by ldconfig -p in the image; use a base image with CUDA 13 and cuDNN 9, e.g. the default ${DEFAULT_GPU_BASE_IMAGE}`,
    );
  });

  test('only libcuda.so.1 is exempt, and only an empty listing fails everything else', () => {
    expect(RUNTIME_PROVIDED_LIBS).toEqual(['libcuda.so.1']);
    const plan = planBaseImageCheck([cudaProvider], []);
    expect(plan.exempt).toEqual(['libcuda.so.1']);
    expect(plan.missing.map((m) => m.name)).toEqual(cudaProvider.needed.filter((n) => n !== 'libcuda.so.1'));
    expect(describeMissing('b', plan.missing)).toMatch(
      /^base image "b" cannot load libonnxruntime_providers_cuda.so: libcublasLt.so.13, libcublas.so.13, .* \(needed by libonnxruntime_providers_cuda.so\) not found/,
    );
  });

  test('an aarch64 library needs AArch64 entries; an unknown machine accepts any', () => {
    const arm: ShippedLib = { file: 'a.so', soname: '', machine: 183, needed: ['libc.so.6'] };
    expect(ldconfigArchFlag(183)).toBe('AArch64');
    expect(planBaseImageCheck([arm], parseLdconfigListing(LISTING)).missing).toEqual([{ name: 'libc.so.6', neededBy: ['a.so'], otherArch: ['x86-64'] }]);
    const armListing = parseLdconfigListing('\tlibc.so.6 (libc6,AArch64, OS ABI: Linux 3.7.0) => /lib/aarch64-linux-gnu/libc.so.6\n');
    expect(planBaseImageCheck([arm], armListing).resolved).toEqual({ 'libc.so.6': '/lib/aarch64-linux-gnu/libc.so.6' });
    expect(planBaseImageCheck([{ ...arm, machine: 9999 }], parseLdconfigListing(LISTING)).missing).toEqual([]);
  });
});
