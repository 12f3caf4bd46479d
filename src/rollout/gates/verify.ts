import type { RolloutRun } from '../context';
import type { Findings, Gate, GateContext, Release } from './gate';

/**
 * The verification every strategy's step shares: `gates` in order against `release`, each a step of the timeline
 * (but a silent one), each recorded under its gate in the run's ledger as it ends. The first gate that throws fails
 * its gate and ends the verification (the error goes on to the strategy's roll back); what each gate found is handed
 * to the ones after it.
 */
export async function verify(release: Release, gates: readonly Gate[], run: RolloutRun): Promise<Findings> {
  let found: Findings = { pods: [] };
  for (const gate of gates) {
    let observedEvidence: string[] | undefined;
    const ctx: GateContext = {
      kube: run.kube,
      namespace: run.namespace,
      release,
      signal: run.signal,
      remainingMs: () => run.remainingMs(),
      progress: (line) => run.log.info(line),
      transport: (service) => run.transport(service),
      found,
      observed: (observation) => {
        if (observation.evidence) observedEvidence = observation.evidence;
        if (observation.latencyP95Ms !== undefined) run.latencyP95Ms = observation.latencyP95Ms;
      },
    };
    const started = Date.now();
    const seconds = () => (Date.now() - started) / 1000;
    try {
      const result = gate.silent ? await gate.run(ctx) : await run.step(gate.name, () => gate.run(ctx));
      run.gates.checkPassed(gate.gate, seconds(), result, observedEvidence);
      found = { ...found, ...result.found };
    } catch (e) {
      run.gates.checkFailed(gate.gate, seconds(), e, observedEvidence);
      throw e;
    }
  }
  return found;
}
