#!/usr/bin/env node
// The last lines scripts/test.sh prints: when tests failed, one line per failure (its file, its name, the first line
// of what it said) and one line on the machine (memory, disk, Docker, the cluster's nodes, the kernel's OOM kills),
// short enough to survive a CI log cut to its tail; then the closing "jest: N passed, M failed" line.
//   node scripts/test-digest.js unit.json second.json
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const MAX_LINES = 25;
const WIDTH = 220;
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const plain = (s) => String(s).replace(ANSI, '');
const cut = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
// the first three lines of what a failure said (the matcher, then its expected and received values)
const firstLine = (message) =>
  plain(message)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('at ') && !l.startsWith('●'))
    .slice(0, 3)
    .join(' | ');

const runs = process.argv
  .slice(2)
  .filter((f) => fs.existsSync(f))
  .map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const n = (k) => runs.reduce((s, r) => s + (r[k] || 0), 0);

const failures = [];
for (const run of runs)
  for (const file of run.testResults || []) {
    const rel = path.relative(process.cwd(), file.name);
    const failed = (file.assertionResults || []).filter((a) => a.status === 'failed');
    for (const a of failed) {
      const secs = a.duration ? ` (${(a.duration / 1000).toFixed(0)} s)` : '';
      failures.push(`✗ ${rel} › ${cut(a.fullName || a.title, 90)}${secs}: ${firstLine((a.failureMessages || []).join('\n'))}`);
    }
    // a file that failed outside its tests: it did not compile, a hook threw, a worker died
    if (!failed.length && file.status === 'failed') failures.push(`✗ ${rel}: ${firstLine(file.message || 'failed to run')}`);
  }

const sh = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 }).trim();
  } catch {
    return undefined;
  }
};

function machine() {
  const parts = [];
  const mem = sh('free', ['-m']);
  const m = mem && /Mem:\s+(\d+)\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)/.exec(mem);
  if (m) parts.push(`memory ${m[2]} of ${m[1]} MiB available`);
  const df = sh('df', ['-h', '--output=target,pcent,avail', ...['/', '/var/lib/docker', '/var/lib/containerd'].filter((d) => fs.existsSync(d))]);
  if (df)
    parts.push(
      `disk ${[...new Set(df.split('\n').slice(1))]
        .map((l) => l.trim().split(/\s+/))
        .map(([t, p, a]) => `${t} ${p} used (${a} free)`)
        .join(', ')}`,
    );
  const docker = sh('docker', ['info', '--format', '{{.ContainersRunning}}']);
  parts.push(docker === undefined ? 'docker: not answering' : `docker: ${docker} containers running`);
  if (process.env.KUBECONFIG) {
    // each node with the conditions that are true (Ready, and any DiskPressure, MemoryPressure, PIDPressure)
    const nodes = sh('kubectl', [
      'get',
      'nodes',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}{" "}{range .status.conditions[?(@.status=="True")]}{.type}{"+"}{end}{"\\n"}{end}',
    ]);
    parts.push(
      nodes === undefined
        ? 'kubernetes: not answering'
        : `nodes: ${nodes
            .split('\n')
            .map((l) => l.replace(/\+$/, ''))
            .join(', ')}`,
    );
  }
  const kernel = sh('dmesg', []) ?? sh('journalctl', ['-k', '--no-pager', '-q', '--since', '-3h']);
  if (kernel !== undefined) {
    const kills = kernel.split('\n').filter((l) => /Out of memory: Killed process|oom-kill/i.test(l));
    const victims = [...new Set(kills.map((l) => /\(([^)]+)\)/.exec(l)?.[1]).filter(Boolean))];
    parts.push(`OOM kills: ${kills.length}${victims.length ? ` (${victims.slice(0, 6).join(', ')})` : ''}`);
  }
  return parts.join('; ');
}

if (failures.length) {
  console.log(`\n${failures.length} failed:`);
  for (const f of failures.slice(0, MAX_LINES)) console.log(cut(f, WIDTH));
  if (failures.length > MAX_LINES) console.log(`… and ${failures.length - MAX_LINES} more (above, in jest's summary)`);
  console.log(cut(`machine: ${machine()}`, 600));
}
console.log(`jest: ${n('numPassedTests')} passed, ${n('numFailedTests')} failed` + (n('numPendingTests') ? `, ${n('numPendingTests')} skipped` : ''));
