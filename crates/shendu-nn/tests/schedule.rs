//! Learning-rate schedules: Darknet's policies against values computed by hand from
//! `get_current_rate` (AlexeyAB's network.c), the warmup cosine, and `Schedule::parse`.
//! (The PyTorch-scheduler variants are checked in loss_optim_reference.rs.)

use shendu_nn::schedule::{DarknetPolicy, Schedule};
use shendu_nn::Error;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-15 * b.abs().max(1e-300) + 1e-18
}

fn darknet(burn_in: usize, policy: DarknetPolicy) -> Schedule {
    Schedule::Darknet { burn_in, power: 4.0, policy }
}

#[test]
fn darknet_policies_follow_get_current_rate() {
    let base = 0.001;
    // burn_in: base * (batch / burn_in)^4 before any policy.
    let s = darknet(1000, DarknetPolicy::Steps { steps: vec![400], scales: vec![0.1] });
    assert_eq!(s.lr_at(base, 0), 0.0);
    assert!(close(s.lr_at(base, 500), 0.001 * 0.0625));
    assert!(close(s.lr_at(base, 999), 0.001 * (0.999f64).powi(4)));
    // At 1000 burn-in ends and the steps policy (already past 400) applies.
    assert!(close(s.lr_at(base, 1000), 0.0001));

    // steps: scales multiply from the batch equal to each step on.
    let s = darknet(0, DarknetPolicy::Steps { steps: vec![400, 800, 900], scales: vec![0.1, 0.5, 10.0] });
    assert_eq!(s.lr_at(base, 399), 0.001);
    assert!(close(s.lr_at(base, 400), 0.001 * 0.1));
    assert!(close(s.lr_at(base, 850), 0.001 * 0.1 * 0.5));
    assert!(close(s.lr_at(base, 5000), 0.001 * 0.1 * 0.5 * 10.0));

    // poly: base * (1 - batch / max_batches)^power, 0 from max_batches.
    let s = darknet(0, DarknetPolicy::Poly { max_batches: 1000 });
    assert_eq!(s.lr_at(base, 0), 0.001);
    assert!(close(s.lr_at(base, 500), 0.001 * 0.0625));
    assert!(close(s.lr_at(base, 750), 0.001 * 0.25f64.powi(4)));
    assert_eq!(s.lr_at(base, 1000), 0.0);
    assert_eq!(s.lr_at(base, 1200), 0.0);
    let s = Schedule::Darknet { burn_in: 0, power: 1.0, policy: DarknetPolicy::Poly { max_batches: 1000 } };
    assert!(close(s.lr_at(base, 250), 0.00075));

    // sigmoid: base / (1 + exp(gamma * (batch - step))).
    let s = darknet(0, DarknetPolicy::Sigmoid { gamma: 0.01, step: 500 });
    assert!(close(s.lr_at(base, 500), 0.0005));
    assert!(close(s.lr_at(base, 600), 0.001 / (1.0 + 1f64.exp())));
    assert!(close(s.lr_at(base, 400), 0.001 / (1.0 + (-1f64).exp())));

    // exp: base * gamma^batch.
    let s = darknet(0, DarknetPolicy::Exp { gamma: 0.999 });
    assert!(close(s.lr_at(base, 10), 0.001 * 0.999f64.powi(10)));

    // step: base * scale^(batch / step), integer division.
    let s = darknet(0, DarknetPolicy::Step { step: 100, scale: 0.5 });
    assert_eq!(s.lr_at(base, 99), 0.001);
    assert!(close(s.lr_at(base, 250), 0.00025));

    // constant (after burn-in).
    let s = darknet(10, DarknetPolicy::Constant);
    assert!(close(s.lr_at(base, 5), 0.001 * 0.0625));
    assert_eq!(s.lr_at(base, 10), 0.001);
}

#[test]
fn cosine_warmup_shape() {
    let s = Schedule::CosineWarmup { warmup: 10, total: 110, min_lr: 0.01 };
    assert_eq!(s.lr_at(1.0, 0), 0.0);
    assert_eq!(s.lr_at(1.0, 5), 0.5);
    assert_eq!(s.lr_at(1.0, 10), 1.0);
    assert!(close(s.lr_at(1.0, 60), 0.505));
    assert!(close(s.lr_at(1.0, 110), 0.01));
    assert_eq!(s.lr_at(1.0, 500), 0.01);
    // No room after the warmup: the base rate.
    assert_eq!(Schedule::CosineWarmup { warmup: 10, total: 5, min_lr: 0.0 }.lr_at(1.0, 20), 1.0);
    // Polynomial with an end rate.
    let p = Schedule::Polynomial { total: 10, power: 1.0, end_lr: 0.1 };
    assert!(close(p.lr_at(1.0, 5), 0.55));
    assert!(close(p.lr_at(1.0, 50), 0.1));
    assert_eq!(Schedule::Constant.lr_at(0.3, 1_000_000), 0.3);
}

#[test]
fn parse_forms() {
    assert_eq!(Schedule::parse("constant").unwrap(), Schedule::Constant);
    assert_eq!(Schedule::parse(" step:size=1000, gamma=0.5 ").unwrap(), Schedule::Step { step_size: 1000, gamma: 0.5 });
    assert_eq!(Schedule::parse("step:size=30").unwrap(), Schedule::Step { step_size: 30, gamma: 0.1 });
    assert_eq!(Schedule::parse("multistep:milestones=3|6,gamma=0.1").unwrap(), Schedule::MultiStep { milestones: vec![3, 6], gamma: 0.1 });
    assert_eq!(Schedule::parse("exp:gamma=0.95").unwrap(), Schedule::Exponential { gamma: 0.95 });
    assert_eq!(Schedule::parse("poly:total=100,power=2").unwrap(), Schedule::Polynomial { total: 100, power: 2.0, end_lr: 0.0 });
    assert_eq!(
        Schedule::parse("cosine:warmup=100,total=1000,min_lr=1e-5").unwrap(),
        Schedule::CosineWarmup { warmup: 100, total: 1000, min_lr: 1e-5 }
    );
    assert_eq!(
        Schedule::parse_with_total("cosine:warmup=100", Some(5000)).unwrap(),
        Schedule::CosineWarmup { warmup: 100, total: 5000, min_lr: 0.0 }
    );
    assert_eq!(
        Schedule::parse("darknet:policy=steps,steps=400|800,scales=0.1|0.1,burn_in=100").unwrap(),
        Schedule::Darknet { burn_in: 100, power: 4.0, policy: DarknetPolicy::Steps { steps: vec![400, 800], scales: vec![0.1, 0.1] } }
    );
    assert_eq!(
        Schedule::parse_with_total("darknet:policy=poly,power=2", Some(900)).unwrap(),
        Schedule::Darknet { burn_in: 0, power: 2.0, policy: DarknetPolicy::Poly { max_batches: 900 } }
    );
    assert_eq!(
        Schedule::parse("darknet:policy=sigmoid,gamma=0.1,step=50").unwrap(),
        Schedule::Darknet { burn_in: 0, power: 4.0, policy: DarknetPolicy::Sigmoid { gamma: 0.1, step: 50 } }
    );
    assert_eq!(
        Schedule::parse("darknet:policy=step,step=10,scale=0.9").unwrap(),
        Schedule::Darknet { burn_in: 0, power: 4.0, policy: DarknetPolicy::Step { step: 10, scale: 0.9 } }
    );
    assert_eq!(
        Schedule::parse("darknet:policy=exp,gamma=0.99").unwrap(),
        Schedule::Darknet { burn_in: 0, power: 4.0, policy: DarknetPolicy::Exp { gamma: 0.99 } }
    );
}

#[test]
fn parse_errors_name_the_flag() {
    for (text, needle) in [
        ("bogus", "unknown schedule"),
        ("step:gamma=0.1", "needs size"),
        ("step:size=x", "not a non-negative integer"),
        ("step:size=0", "> 0"),
        ("step:size=10,gama=0.1", "unknown key \"gama\""),
        ("multistep:milestones=3|a", "milestones"),
        ("exp:gamma=nan", "not a number"),
        ("cosine:warmup=100", "needs total"),
        ("poly:power=2", "needs total"),
        ("step:size", "key=value"),
        ("darknet:policy=steps,steps=1|2,scales=0.1", "2 steps but 1 scales"),
        ("darknet:policy=random", "unknown darknet policy"),
        ("darknet:policy=poly", "max_batches"),
    ] {
        match Schedule::parse(text) {
            Err(Error::Config { name, msg }) => {
                assert_eq!(name, "schedule");
                assert!(msg.contains(&format!("{text:?}")) && msg.contains(needle), "{text}: {msg}");
            }
            other => panic!("{text}: expected a config error, got {other:?}"),
        }
    }
}
