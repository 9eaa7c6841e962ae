//! Target `decap`: every decapsulation. [`AutoDetectEncap`] and each
//! combinator (alone and nested) over the input read as every link type.

use flowscope::extract::{
    AutoDetectEncap, AutoEncapVariants, FiveTuple, InnerGeneve, InnerGre, InnerGtpU, InnerIpInIp,
    InnerTeredo, InnerVxlan, IpPair, StripMpls, StripVlan,
};

use super::frame::every_link;

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let ft = FiveTuple::bidirectional();
    every_link(&AutoDetectEncap::new(ft), data);
    every_link(&AutoDetectEncap::new(IpPair), data);
    every_link(
        &AutoDetectEncap::with_variants(ft, AutoEncapVariants::none()),
        data,
    );
    every_link(&StripVlan::new(ft), data);
    every_link(&StripMpls::new(ft), data);
    every_link(&InnerVxlan::new(ft), data);
    every_link(&InnerGeneve::new(ft), data);
    every_link(&InnerGtpU::new(ft), data);
    every_link(&InnerGre::new(ft), data);
    every_link(&InnerIpInIp::new(ft), data);
    every_link(&InnerTeredo::new(ft), data);
    every_link(&InnerGre::new(InnerVxlan::new(ft)), data);
    every_link(&InnerVxlan::new(InnerGre::new(InnerIpInIp::new(ft))), data);
    every_link(&StripVlan::new(InnerGtpU::new(InnerTeredo::new(ft))), data);
}
