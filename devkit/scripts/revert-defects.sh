#!/usr/bin/env bash
# Puts back, one at a time, each of the five defects of issue 13 ("never release a finalizer on
# a guess") and runs the model test of the deletion invariant, which must fail every time.
# Usage: bash devkit/scripts/revert-defects.sh [N...]   (default: 1 2 3 4 5; MODEL_CASES=1000)
# The patched files must be unmodified; each is restored with `git checkout` after its run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
files=(src/kinds/cluster.rs src/kinds/mod.rs src/decide.rs)
if ! git diff --quiet -- "${files[@]}"; then
    echo "uncommitted changes in ${files[*]}: commit or stash them first" >&2
    exit 2
fi
restore() { git checkout -q -- "${files[@]}"; }
trap restore EXIT
status=0
for n in "${@:-1 2 3 4 5}"; do
  for defect in $n; do
    python3 - "$defect" <<'PY'
import sys
n = sys.argv[1]
def sub(path, old, new):
    s = open(path).read()
    assert old in s, f"{path}: the code changed; update this script ({old[:60]!r})"
    open(path, "w").write(s.replace(old, new, 1))
if n == "1":  # observe maps 80020 to absent; a child trusts its parent's "gone"
    sub("src/kinds/cluster.rs", """            Err(e) if e.class == ErrorClass::NotFoundOrForbidden => {
                confirm_by_list(s, id, e)?.map(|detail| Observed::Absent { detail })
            }""", """            Err(e) if e.class == ErrorClass::NotFoundOrForbidden => Ok(Observed::Absent {
                detail: e.message.clone(),
            }),""")
    sub("src/kinds/mod.rs", """        } if hint_gone || !endpoint_known => describe_container(plan, s),""",
        """        } if hint_gone => Ok(Some(Attempt::Absent(Evidence::ClusterDeleted, "parent says gone".into()))),
        Container::Cluster { endpoint_known, .. } if !endpoint_known => describe_container(plan, s),""")
elif n == "2":  # a missing referenced object counts as gone with it
    sub("src/decide.rs", """        Input::Unresolved(why) => {""", """        Input::Unresolved(Unresolved::ReferenceNotFound(m)) => {
            Decision::Release(note(false, Reason::AlreadyAbsent, "Drop", m))
        }
        Input::Unresolved(why) => {""")
elif n == "3":  # Milvus 1100 counts as not found
    sub("src/kinds/mod.rs", """    e.class == ErrorClass::NotFound
}""", """    matches!(e.class, ErrorClass::NotFound | ErrorClass::InvalidName)
}""")
elif n == "4":  # sharing and dependents decided before the caches listed
    sub("src/decide.rs", """    if !f.caches_synced {
        return Some(Gate::CachesSyncing);
    }
""", "")
elif n == "5":  # a cluster drop sent without describing first
    sub("src/kinds/cluster.rs", """        let state = match s.ask(Call::DescribeCluster)? {""", """        if !plan.accepted {
            return Ok(match s.ask(Call::DropCluster)? {
                Ok(_) => Attempt::Accepted("accepted".into()),
                Err(e) => Attempt::Failed(e.clone()),
            });
        }
        let state = match s.ask(Call::DescribeCluster)? {""")
else:
    sys.exit(f"no defect {n}")
PY
    echo "== defect $defect put back"
    if MODEL_CASES="${MODEL_CASES:-1000}" cargo test -q --lib model_tests::the_deletion_invariant >/tmp/revert-$defect.log 2>&1; then
        echo "   NOT caught: the model test passed" >&2
        status=1
    else
        grep -m1 "VIOLATION" "/tmp/revert-$defect.log" | sed 's/^/   caught: /' || echo "   caught (see /tmp/revert-$defect.log)"
    fi
    restore
  done
done
exit $status
