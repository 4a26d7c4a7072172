// A partition task's lifecycle, which /readyz reports: ready only once an attempt to open the task
// succeeded, failing from a failed attempt (or a batch failed on an infrastructure fault) until a retry
// opens it, nothing an attempt that is no longer the partition's does can make it ready, and every
// change not in its table of transitions throws.

import { expect } from 'chai';

import type { PartitionTask } from '../../../src/processor/partition-task.js';
import { IllegalTaskTransitionError, TaskLifecycle, type TaskFault } from '../../../src/processor/task-lifecycle.js';

const task = (partition: number) => ({ partition }) as unknown as PartitionTask;
const attemptOf = (t: PartitionTask) => Promise.resolve(t);
const fault = (error: string, kind: TaskFault['kind'] = 'open'): TaskFault => ({ kind, since: Date.now(), attempts: 1, error, reason: error, timer: setTimeout(() => {}, 0) });

/** A lifecycle whose task is open and ready. */
function readyLifecycle(partition: number): { lifecycle: TaskLifecycle; opened: PartitionTask } {
  const lifecycle = new TaskLifecycle(partition);
  const opened = task(partition);
  const attempt = attemptOf(opened);
  lifecycle.opening(attempt);
  lifecycle.openedBy(attempt, opened);
  return { lifecycle, opened };
}

describe('a partition task\'s lifecycle', () => {
  it('restores, then is ready once its attempt opened the task', () => {
    const lifecycle = new TaskLifecycle(3);
    expect(lifecycle.state).to.equal('restoring');
    expect(lifecycle.readyTask).to.equal(undefined);
    const opened = task(3);
    const attempt = attemptOf(opened);
    lifecycle.opening(attempt);
    expect(lifecycle.task).to.equal(attempt);
    expect(lifecycle.state).to.equal('restoring');
    expect(lifecycle.openedBy(attempt, opened)).to.deep.equal({ ready: true, ended: undefined });
    expect(lifecycle.state).to.equal('ready');
    expect(lifecycle.readyTask).to.equal(opened);
  });

  it('is failing from a failed attempt until a retry opens it, which ends the fault', () => {
    const lifecycle = new TaskLifecycle(0);
    const first = Promise.reject(new Error('LOCK held')).catch(() => task(0));
    lifecycle.opening(first);
    const failed = fault('LOCK held');
    lifecycle.openFailedBy(first, failed);
    expect(lifecycle.state).to.equal('failing');
    expect(lifecycle.task, 'no attempt under way between retries').to.equal(undefined);
    expect(lifecycle.fault).to.equal(failed);
    const retry = attemptOf(task(0));
    lifecycle.opening(retry);
    expect(lifecycle.state, 'still failing while the retry runs').to.equal('failing');
    expect(lifecycle.openedBy(retry, task(0)).ended).to.equal(failed);
    expect(lifecycle.state).to.equal('ready');
    expect(lifecycle.fault).to.equal(undefined);
  });

  it('a failure that does not count (stopping, moving) leaves it restoring, with no attempt', () => {
    const lifecycle = new TaskLifecycle(1);
    const attempt = attemptOf(task(1));
    lifecycle.opening(attempt);
    lifecycle.openFailedBy(attempt, undefined);
    expect(lifecycle.state).to.equal('restoring');
    expect(lifecycle.task).to.equal(undefined);
  });

  it('a batch failed on its open task: failing until a batch commits, even once the task reopened', () => {
    const { lifecycle, opened } = readyLifecycle(2);
    const hsmDown = fault('master key 1 (pkcs11) is unavailable', 'batch');
    expect(lifecycle.batchFailedOn(task(2), hsmDown), 'another task\'s batch changes nothing').to.equal(false);
    expect(lifecycle.state).to.equal('ready');
    expect(lifecycle.batchFailedOn(opened, hsmDown)).to.equal(true);
    expect(lifecycle.state).to.equal('failing');
    expect(lifecycle.readyTask).to.equal(undefined);
    expect(lifecycle.task, 'reopened after the back-off').to.equal(undefined);
    const reopened = task(2);
    const retry = attemptOf(reopened);
    lifecycle.opening(retry);
    expect(lifecycle.openedBy(retry, reopened), 'an open task does not show the fault is gone').to.deep.equal({ ready: true, ended: undefined });
    expect(lifecycle.fault).to.equal(hsmDown);
    expect(lifecycle.batchCommitted()).to.equal(hsmDown);
    expect(lifecycle.fault).to.equal(undefined);
    expect(lifecycle.batchCommitted(), 'nothing more to end').to.equal(undefined);
  });

  it('once closed, stays closed: a late attempt does not make it ready and it cannot be opened again', () => {
    const lifecycle = new TaskLifecycle(4);
    const attempt = attemptOf(task(4));
    lifecycle.opening(attempt);
    lifecycle.openFailedBy(Promise.resolve(task(4)), fault('x'));
    expect(lifecycle.close(), 'the attempt to close').to.equal(attempt);
    expect(lifecycle.state).to.equal('closed');
    expect(lifecycle.fault).to.equal(undefined);
    expect(lifecycle.openedBy(attempt, task(4)).ready).to.equal(false);
    expect(lifecycle.state).to.equal('closed');
    lifecycle.openFailedBy(attempt, fault('y'));
    expect(lifecycle.state).to.equal('closed');
    expect(() => lifecycle.opening(attemptOf(task(4)))).to.throw(IllegalTaskTransitionError, /partition 4: its task cannot be opened again once closed/);
    expect(lifecycle.close(), 'closing twice is harmless').to.equal(undefined);
  });

  it('a ready task is not opened again: only a failure or a close leaves ready', () => {
    const { lifecycle, opened } = readyLifecycle(6);
    expect(() => lifecycle.opening(attemptOf(task(6)))).to.throw(IllegalTaskTransitionError, /once ready/);
    expect(lifecycle.readyTask).to.equal(opened);
  });

  it('an attempt superseded by a newer one cannot make it ready', () => {
    const { lifecycle, opened } = readyLifecycle(5);
    lifecycle.batchFailedOn(opened, fault('fenced', 'batch'));
    const newer = attemptOf(task(5));
    lifecycle.opening(newer);
    const old = attemptOf(opened);
    expect(lifecycle.openedBy(old, opened).ready).to.equal(false);
    expect(lifecycle.state).to.equal('failing');
  });
});
