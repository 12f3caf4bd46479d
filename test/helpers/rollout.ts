import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './caffe';
import { LENET } from './lenet-image';
import { kubectlJson, rolloutArgs, dropNamespaces, LAB_PODS_PATCH } from './kube';

/**
 * What the files of the rollout stage on the lab cluster share (rollout.lab, rollout-lease.lab, rollout-basic.lab:
 * one file once, split so that the jest workers run them at once): a work directory, the namespace prefix of the
 * file (its letters and the worker's pid: each test then gets a namespace of its own under it), the --patch file that
 * lands the pods on the real node, and the rollout flags of these tests.
 */
export function rolloutFile(letters: string) {
  const work = tmpDir(`modelship-${letters}-`);
  const nsPrefix = `${letters}${process.pid}`;
  const onRealNode = path.join(work, 'realnode.yaml');
  fs.writeFileSync(onRealNode, LAB_PODS_PATCH);
  return {
    work,
    nsPrefix,
    onRealNode,
    /** A --patch file: the real-node patch and `extra` (more of its last document: the pod template's spec). */
    patchFile: (name: string, extra: string): string => {
      const f = path.join(work, name);
      fs.writeFileSync(f, `${fs.readFileSync(onRealNode, 'utf8')}${extra}`);
      return f;
    },
    /** The rollout flags of these tests; `more` overrides any of them (the CLI refuses a flag given twice). */
    base: (ns: string, image: string, more: string[] = []) =>
      rolloutArgs(
        {
          image,
          'model-name': 'lenet',
          app: 'lenet',
          namespace: ns,
          replicas: '2',
          'bake-time': '3',
          'rollout-timeout': '90',
          reference: LENET,
          cpu: '50m',
          memory: '256Mi',
          patch: onRealNode,
        },
        more,
      ),
    /** Delete this file's namespaces (all, or one), so finished tests leave the real node's CPU to the next ones. */
    dropNamespaces: (only?: string): void => dropNamespaces(nsPrefix, only),
  };
}

/** The exit code, with the run's log in the failure message when it is not the expected one. */
export function expectExit(r: { code: number | null; stderr: string }, code: number): void {
  if (r.code !== code) throw new Error(`exit code ${r.code}, expected ${code}; log:\n${r.stderr.slice(-3000)}`);
}

/** The holder of the deploy lease of app lenet in `ns` (undefined: no lease). */
export const leaseHolder = (ns: string): string | undefined => {
  try {
    return kubectlJson<any>(['-n', ns, 'get', 'lease', 'modelship-lenet']).spec.holderIdentity as string;
  } catch {
    return undefined;
  }
};
