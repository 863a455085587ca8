#!/usr/bin/env bash
# A fuzz campaign: every target (or those named) in turn for SECONDS each,
# one at a time and niced, keeping each corpus and turning crashes into
# regression tests. Not for CI: it runs for hours. Usage:
#
#   fuzz/campaign.sh [-t SECONDS] [-j JOBS] [TARGET...]    # default 900 s, 1 job, all targets
#
# Per target:
# - the corpus is fuzz/corpus/<target>/ (not committed), seeded from
#   spec/transcripts by fuzz/seeds.py the first time, minimized after the run
#   (`cargo fuzz cmin`) so it stays small between campaigns;
# - libFuzzer runs with inputs up to 300 KiB (-max_len=307200), an RSS limit
#   (-rss_limit_mb=1024) and a per-allocation limit (-malloc_limit_mb=256),
#   so a memory blow-up is a finding (an `oom-` artifact), not a pass, and a
#   10 s per-input timeout (`timeout-`); libFuzzer runs in fork mode and
#   goes on after a finding (-ignore_crashes/-ignore_ooms/-ignore_timeouts),
#   so one known bug does not end the target's time box;
# - new crash, oom or timeout artifacts (the first three per kind; the rest
#   stay in fuzz/artifacts/<target>/) are copied to
#   fuzz/regressions/<target>/, which `cargo test -p vireo-proptests --test
#   fuzz_regressions` replays: commit it with the fix;
# - the summary (executions, libFuzzer's cov/ft, corpus size, findings) is
#   appended to fuzz/artifacts/campaign.log and printed at the end, for
#   spec/security.md ("Fuzzing").
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
seconds=900
jobs=1
while getopts "t:j:" opt; do
    case "$opt" in
        t) seconds="$OPTARG" ;;
        j) jobs="$OPTARG" ;;
        *) echo "usage: $0 [-t SECONDS] [-j JOBS] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi

export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "install cargo-fuzz: cargo install cargo-fuzz --locked" >&2; exit 1; }
mkdir -p artifacts regressions
[ -d corpus ] || python3 seeds.py
nice -n 10 cargo fuzz build >/dev/null

log=artifacts/campaign.log
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
    before=$(ls "artifacts/$t" | wc -l)
    marker="artifacts/$t.start"
    touch "$marker"
    out="artifacts/$t.run.log"
    start=$(date +%s)
    # Not fatal: a finding ends the run with a non-zero status; the next
    # target still runs.
    nice -n 10 cargo fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len=307200 \
        -rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=10 \
        -dict=xmpp.dict -fork="$jobs" \
        -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -print_final_stats=1 >"$out" 2>&1 || true
    ran=$(( $(date +%s) - start ))
    # Fork mode reports "#EXECS: cov: N ft: N corp: N ..." lines.
    last=$(grep -hE '^#[0-9]+.*cov: [0-9]+' "$out" | tail -1)
    execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    findings=()
    for kind in crash oom timeout leak; do
        n=0
        # Only this run's: older ones were triaged already.
        for f in $(find "artifacts/$t" -name "$kind-*" -newer "$marker" -printf '%f\n' | sort); do
            [ -e "regressions/$t/$f" ] && continue
            [ $n -ge 3 ] && break
            cp "artifacts/$t/$f" "regressions/$t/$f"
            findings+=("$f")
            n=$((n + 1))
        done
    done
    after=$(ls "artifacts/$t" | wc -l)
    # Keep the corpus small: only inputs that add coverage.
    nice -n 10 cargo fuzz cmin "$t" "corpus/$t" >"artifacts/$t.cmin.log" 2>&1 || true
    corpus=$(ls "corpus/$t" | wc -l)
    line="$(date -u +%FT%TZ) $t: ${ran}s, ${execs} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus}, new artifacts $((after - before)), new regressions: ${findings[*]:-none}"
    echo "$line" | tee -a "$log"
    summary+=("$line")
done
printf '%s\n' "${summary[@]}"
