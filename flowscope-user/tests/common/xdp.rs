//! Running the loaded XDP program on one frame with `BPF_PROG_TEST_RUN`.

use aya::programs::{TestRun, TestRunOptions};
use flowscope::capture::Datapath;
use flowscope_common::XdpMeta;

/// Runs the program once on `frame`: its verdict, and the metadata it wrote
/// in front of the frame (`None` when it wrote none). The kernel copies
/// `data_out` from `data_meta`: metadata, then the frame, which the program
/// must leave unchanged.
pub fn test_run(dp: &mut Datapath, frame: &[u8]) -> (u32, Option<XdpMeta>) {
    let mut out = vec![0u8; frame.len() + 512];
    let res = dp
        .program()
        .unwrap()
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    let size = res.data_size_out as usize;
    let meta = (size == frame.len() + XdpMeta::SIZE).then(|| {
        assert_eq!(
            &out[XdpMeta::SIZE..size],
            frame,
            "the program must not change the frame"
        );
        XdpMeta::from_bytes(out[..XdpMeta::SIZE].try_into().unwrap())
    });
    (res.return_value, meta)
}
